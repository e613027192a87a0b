"""Customer pages: the shop, the order list and an order's detail.

Every page needs a login, and every order is looked up through the customer's own orders
(orders/selectors.py): another customer's order is a 404 for everyone, staff included."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from orders.forms import BuyForm
from orders.selectors import order_detail_for, order_list_for, products_for_sale
from orders.services import INACTIVE_PRICE, OrderError, order_create


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def shop(request: HttpRequest) -> HttpResponse:
    """GET lists what is for sale; POST ("Buy") creates a pending order for one price and a
    quantity and sends the customer to its checkout. Bad input re-renders with the error (400)."""
    form = BuyForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        price, quantity = form.cleaned_data["price"], form.cleaned_data["quantity"]
        try:
            order = order_create(customer=request.user, items=[(price, quantity)])
        except OrderError as exc:
            form.add_error("price" if str(exc) == INACTIVE_PRICE else None, str(exc))
        else:
            return redirect(order.get_checkout_url())
    context = {
        "products": products_for_sale(),
        "form": form,
        # Which price row the submitted form belongs to, to show its errors in place.
        "bound_price": (form.data.get("price", "") if form is not None else ""),
    }
    return render(request, "orders/shop.html", context, status=400 if form is not None else 200)


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/order_list.html", {"orders": order_list_for(user=request.user)})


@login_required
@require_GET
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = get_object_or_404(order_detail_for(user=request.user), number=number)
    return render(request, "orders/order_detail.html", {"order": order})
