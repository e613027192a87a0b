"""A customer's receipts and credit notes as PDF downloads (their own only: another's is 404)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from receipts.selectors import document_for
from receipts.services import document_pdf


@login_required
def document_download(request: HttpRequest, number: str) -> HttpResponse:
    document = document_for(user=request.user, number=number)
    if document is None:
        raise Http404("No such receipt or credit note.")
    return pdf_response(document)


def pdf_response(document) -> HttpResponse:
    response = HttpResponse(document_pdf(document), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{document.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
