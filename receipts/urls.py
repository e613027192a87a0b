from django.urls import path

from receipts import views

app_name = "receipts"

urlpatterns = [
    path("<str:number>.pdf", views.document_download, name="pdf"),
]
