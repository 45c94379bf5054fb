"""The tables. Importing this package registers every table on SQLModel.metadata."""
from backend.models.events import Event, ExceptionItem, JobLock, RoutingSetting, Webhook, WebhookDelivery
from backend.models.fulfilment import Package, Rejection, Task
from backend.models.inventory import InventoryPosition, StockCount, StockMovement, StoreReliability
from backend.models.masterdata import Barcode, Channel, ChannelRule, Location, Product
from backend.models.orders import Allocation, Order, OrderLine
from backend.models.sync import StoreVersion, SyncAction
from backend.models.users import ApiKey, LoginAttempt, User

__all__ = [
    "Allocation", "ApiKey", "Barcode", "Channel", "ChannelRule", "Event", "ExceptionItem", "InventoryPosition",
    "JobLock", "Location", "LoginAttempt", "Order", "OrderLine", "Package", "Product", "Rejection", "RoutingSetting",
    "StockCount", "StockMovement", "StoreReliability", "StoreVersion", "SyncAction", "Task", "User", "Webhook",
    "WebhookDelivery",
]
