"""Built-in clustering: a master process that owns the listening socket and
supervises worker processes, each serving the shop on that socket.

Nothing in this package imports :mod:`crackershop.app`; the worker entry
point (:mod:`crackershop.cluster.worker`) is the one place that joins the
cluster to the app.
"""
