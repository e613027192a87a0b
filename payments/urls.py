"""The checkout pages, namespace "payments", mounted at /checkout/."""

from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("<str:token>/", views.checkout, name="checkout"),
    path("<str:token>/return/", views.checkout_return, name="checkout-return"),
]
