"""The rules of an order, in one place: its states and the moves between
them (:mod:`~crackershop.orders.states`), placing and cancelling without
overselling (:mod:`~crackershop.orders.placing`), the sweep that repairs
what a crash left half done (:mod:`~crackershop.orders.repair`) and
Idempotency-Key (:mod:`~crackershop.orders.idempotency`).

What they need from storage is declared here
(:mod:`~crackershop.orders.interfaces`) and implemented in
:mod:`crackershop.store`; nothing here imports the app or the store.
"""
