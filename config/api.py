"""The REST API for mobile clients: one DRF router that every app's viewsets register on.

Version 1 lives under /api/v1/ (api/v1/): catalogue, orders, payments, saved cards, receipts,
plans and subscriptions.
"""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from api.v1 import views

router = DefaultRouter()
router.register("v1/products", views.ProductViewSet, basename="product")
router.register("v1/orders", views.OrderViewSet, basename="order")
router.register("v1/payments", views.PaymentViewSet, basename="payment")
router.register("v1/payment-methods", views.PaymentMethodViewSet, basename="payment-method")
router.register("v1/receipts", views.ReceiptViewSet, basename="receipt")
router.register("v1/credit-notes", views.CreditNoteViewSet, basename="credit-note")
router.register("v1/plans", views.PlanViewSet, basename="plan")
router.register("v1/subscriptions", views.SubscriptionViewSet, basename="subscription")

urlpatterns = [
    path("v1/auth/token/", views.TokenView.as_view(), name="api-token"),
    *router.urls,
    # Last: any other URL of the API is its JSON 404 (not the site's HTML page).
    re_path(r"^v1/", views.not_found),
]
