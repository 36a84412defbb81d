"""One serving process: the process that answers HTTP (a single-process
server, or one worker of a cluster).

Its service tree is built in one place, :func:`crackershop.server.process.serving`:
the database pool, then the order-repair sweep, then the listening port
with the site. The site (:mod:`~crackershop.server.site`) joins the Klein
app to its dependencies; :mod:`~crackershop.server.connection` and
:mod:`~crackershop.server.channel` hold the limits every HTTP connection
obeys; :mod:`~crackershop.server.tls`, :mod:`~crackershop.server.requestlog`
and :mod:`~crackershop.server.logs` the rest of what a serving process needs.
"""
