"""The REST API for mobile clients: one DRF router that every app's viewsets register on."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()

urlpatterns = router.urls
