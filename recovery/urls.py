"""The subscription pages, namespace "recovery", mounted at /subscriptions/."""

from django.urls import path

from recovery import views

app_name = "recovery"

urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("plans/<slug:slug>/", views.subscribe, name="subscribe"),
    path("plans/<slug:slug>/return/", views.subscribe_return, name="subscribe-return"),
    path("<int:pk>/", views.subscription_detail, name="detail"),
    path("<int:pk>/card/", views.card_update, name="card"),
    path("<int:pk>/card/return/", views.card_return, name="card-return"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/resume/", views.resume, name="resume"),
    path("pay/<str:token>/", views.pay_link, name="pay-link"),
    path("card/<str:token>/", views.card_link, name="card-link"),
]
