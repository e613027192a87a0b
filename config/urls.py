from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz
from payments.webhooks.views import stripe_webhook

admin.site.site_header = "Paydesk"
admin.site.site_title = "Paydesk back office"
admin.site.index_title = "Payments back office"
# The lists need the width (a 1280 px screen fits the payments list with its filters); the
# index, one click away on every page, lists the same models.
admin.site.enable_nav_sidebar = False

# Swagger UI with its start-up script served as a file (the split view), so the site's
# Content-Security-Policy holds; its page has one inline <style> and its CSS draws icons from
# data: URLs, which only this page allows.
api_docs = csp_update({"style-src": ["'self'", "'unsafe-inline'"], "img-src": ["'self'", "data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
    path("checkout/", include("payments.urls")),
    path("receipts/", include("receipts.urls")),
    path("subscriptions/", include("recovery.urls")),
    # The "orders" namespace: /shop/, /orders/ and /orders/<number>/.
    path("", include("orders.urls")),
    path("api/", include("config.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
]

if settings.PAYDESK_BENCH_VIEWS:
    from config.bench import insert_only

    urlpatterns.append(path("bench/insert-only/", insert_only, name="bench-insert-only"))
