"""Exceptions & audit: approve or reject routed exceptions; search and verify the audit trail."""

from __future__ import annotations

import streamlit as st

from promotwin.dashboards import approvals, fmt, ui
from promotwin.workflow.config import OWNERS
from promotwin.workflow.identity import Identity
from promotwin.workflow.store import STATUSES


def _signed_in() -> Identity | None:
    """The user deciding: named by the trusted proxy, or signed in with a password here."""
    users = approvals.configured_users()
    if isinstance(users, str):
        st.info(users)
        return None
    try:
        proxied = approvals.header_identity(users, dict(st.context.headers))
    except ValueError as exc:
        st.error(fmt.plain_error(exc))
        return None
    identity: Identity | None = proxied or st.session_state.get("identity")
    if identity is not None and proxied is None:
        # the users file is read on every page run: a removed user is signed out at once and
        # a changed role or limit applies to the next decision, not the next sign-in
        identity = users.current(identity)
        if identity is None:
            del st.session_state["identity"]
            st.warning("You were signed out: your user is no longer in the users file.")
            return None
        st.session_state["identity"] = identity
    if identity is not None:
        s1, s2 = st.columns([3, 1])
        s1.caption(f"Signed in as {identity.name} {identity.signature()}.")
        if proxied is None and s2.button("Sign out", key="sign_out"):
            del st.session_state["identity"]
            st.rerun()
        return identity
    n1, n2 = st.columns(2)
    name = n1.text_input("User", key="user")
    password = n2.text_input("Password", type="password", key="password")
    if st.button("Sign in", key="sign_in"):
        try:
            st.session_state["identity"] = approvals.sign_in(users, name, password)
        except ValueError as exc:
            st.error(fmt.plain_error(exc))
        else:
            st.rerun()
    return None


st.set_page_config(page_title="Exceptions & audit · Promotwin", layout="wide")
st.title("Exceptions and audit trail")

with ui.plain_errors():
    path = st.text_input(
        "Approval store (SQLite file or SQLAlchemy URL)", ui.setting(ui.ENV_STORE), key="store"
    )
    status = approvals.open_store(path.strip() or None)
    if status.store is None:
        st.info(status.message)
        st.stop()
    store = status.store
    c1, c2 = st.columns(2)
    owner = c1.selectbox("Owner queue", ["all", *OWNERS], key="owner")
    state = c2.selectbox("Status", list(STATUSES) + ["all"], key="status")
    frame = approvals.queue(
        store, None if state == "all" else state, None if owner == "all" else owner
    )
    st.subheader(f"Exceptions ({state}): {fmt.count(len(frame))}")
    st.dataframe(approvals.by_owner_priority(frame), width="stretch", key="by_owner")
    st.dataframe(frame, hide_index=True, width="stretch", key="queue")

    open_ids = list(approvals.queue(store, "open")["id"])
    st.subheader("Decide")
    if "decision" in st.session_state:
        st.success(st.session_state.pop("decision"))
    if not open_ids:
        st.success("No exception is waiting for a decision.")
    else:
        identity = _signed_in()
        if identity is not None:
            d1, d2 = st.columns(2)
            chosen = d1.selectbox("Exception", open_ids, key="decide_id")
            note = d2.text_input("Note for the audit trail", key="note")
            b1, b2 = st.columns(2)
            approve = b1.button("Approve", key="approve", type="primary")
            reject = b2.button("Reject", key="reject")
            if approve or reject:
                try:
                    st.session_state["decision"] = approvals.decide(
                        store, int(chosen), approve, identity, note
                    )
                except ValueError as exc:
                    st.error(fmt.plain_error(exc))
                else:
                    st.rerun()

    st.subheader("Audit trail")
    ok, text = approvals.verify_text(store.verify())
    (st.success if ok else st.error)(text)
    query = st.text_input("Search (event, actor, SKU, location, rule, detail, id)", key="search")
    log = approvals.search_audit(store, query)
    st.caption(f"{fmt.count(len(log))} matching records, newest first.")
    st.dataframe(log, hide_index=True, width="stretch", key="audit")
