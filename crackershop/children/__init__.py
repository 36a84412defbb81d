"""Helper servers run as child processes of crackershop: the embedded
database (today the only one). Each is a Service, ready when it answers
its protocol (:mod:`~crackershop.children.probe`), and dies with its parent
(:mod:`~crackershop.children.childexec`).
"""
