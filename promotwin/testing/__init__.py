"""Helpers shared by the tests and the benchmarks: small scenarios built in code, hand-built
planning snapshots, and a real Tryton ERP to provision and seed (``promotwin.testing.tryton``,
needs the ``erp`` extra). Not used by the library itself."""
