"""Operating a server: the control socket, the ``crackershop`` commands that
talk to it (status, stop, restart, scale, logs, monit), the log reader, the
systemd unit and the demo catalogue."""
