"""The shop's own business errors (ATH errors come from ``athkit.protocol``).

PRODUCT_NOT_FOUND  404  no product with this id
ORDER_NOT_FOUND    404  no order with this id for this user
INVALID_QUANTITY   400  quantity not a whole number from 1 to 99
OUT_OF_STOCK       409  fewer items in stock than asked for (nothing is changed)
CART_EMPTY         409  an order needs at least one item in the cart
"""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """A refused shop operation: a stable ``code``, an HTTP ``status`` and a readable message."""

    def __init__(
        self, code: str, message: str, status: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body answered for this error (same shape as ATH errors)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body
