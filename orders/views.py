"""Customer pages: the shop, the order list (paginated) and an order's detail.

Every page needs a login, and every order is looked up through the customer's own orders
(orders/selectors.py): another customer's order is a 404 for everyone, staff included."""

import uuid

from django.contrib.auth.decorators import login_required
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from orders.forms import BuyForm
from orders.selectors import order_detail_for, order_list_for, products_for_sale
from orders.services import INACTIVE_PRICE, PRICE_UNAVAILABLE, OrderError, order_create

ORDERS_PER_PAGE = 25
PRICE_ERRORS = (INACTIVE_PRICE, PRICE_UNAVAILABLE)


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def shop(request: HttpRequest) -> HttpResponse:
    """GET lists what is for sale, each Buy form with a fresh submission token; POST ("Buy")
    creates a pending order for one price and a quantity and sends the customer to its
    checkout. The same form posted again goes to the same order's checkout. Bad input
    re-renders with the error (400). Not cached, so Back shows forms with fresh tokens."""
    form = BuyForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        try:
            order = order_create(
                customer=request.user,
                items=[(form.cleaned_data["price"], form.cleaned_data["quantity"])],
                submission_token=form.cleaned_data["submission_token"],
            )
        except OrderError as exc:
            form.add_error("price" if str(exc) in PRICE_ERRORS else None, str(exc))
        else:
            return redirect(order.get_checkout_url())
    products = products_for_sale()
    for product in products:
        for price in product.prices_for_sale:
            price.submission_token = uuid.uuid4()
    context = {
        "products": products,
        "form": form,
        # Which price row the submitted form belongs to, to show its errors in place.
        "bound_price": (form.data.get("price", "") if form is not None else ""),
    }
    return render(request, "orders/shop.html", context, status=400 if form is not None else 200)


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    """The customer's orders, newest first, ORDERS_PER_PAGE a page (`?page=N`); a page that
    does not exist is a 404. Each page costs the same few queries however many orders exist."""
    paginator = Paginator(order_list_for(user=request.user), ORDERS_PER_PAGE)
    try:
        page = paginator.page(request.GET.get("page", 1))
    except InvalidPage as exc:
        raise Http404(str(exc)) from exc
    return render(
        request, "orders/order_list.html", {"orders": page.object_list, "page": page}
    )


@login_required
@require_GET
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = get_object_or_404(order_detail_for(user=request.user), number=number)
    return render(request, "orders/order_detail.html", {"order": order})
