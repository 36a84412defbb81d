# A thin shim: twistd imports every module in twisted/plugins/ to find
# plugins, so this file must stay cheap to import and must not import the
# reactor. The ServiceMaker resolves crackershop.tap only when it is used.
from twisted.application.service import ServiceMaker

crackershop = ServiceMaker(
    "crackershop",
    "crackershop.tap",
    "The crackershop shop API server",
    "crackershop",
)
