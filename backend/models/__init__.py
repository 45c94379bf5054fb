"""The tables. Importing this package registers every table on SQLModel.metadata."""
from backend.models.events import (
    Event,
    ExceptionCost,
    ExceptionItem,
    JobLock,
    RoutingSetting,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from backend.models.fulfilment import Package, Rejection, Task
from backend.models.hq import HqRollup, HqRollupBlock
from backend.models.inventory import InventoryPosition, StockAlert, StockCount, StockMovement, StoreReliability
from backend.models.masterdata import Barcode, Channel, ChannelRule, Location, Product
from backend.models.orders import Allocation, Order, OrderLine
from backend.models.policy import AllocationPolicy
from backend.models.promise import Quote
from backend.models.sync import StoreVersion, SyncAction
from backend.models.users import ApiKey, LoginAttempt, User

__all__ = [
    "Allocation", "AllocationPolicy", "ApiKey", "Barcode", "Channel", "ChannelRule", "Event", "ExceptionCost",
    "ExceptionItem", "HqRollup", "HqRollupBlock", "InventoryPosition", "JobLock", "Location", "LoginAttempt", "Order",
    "OrderLine", "Package", "Product", "Quote", "Rejection", "RoutingSetting", "StockAlert", "StockCount",
    "StockMovement", "StoreReliability", "StoreVersion", "SyncAction", "Task", "User", "Webhook", "WebhookAttempt",
    "WebhookDelivery",
]
