"""The page a locked-out login gets (django-axes' AXES_LOCKOUT_CALLABLE)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKED_OUT_MESSAGE = (
    "Too many failed login attempts. For your security, logging in is paused: "
    "please try again later."
)
LOCKED_OUT_STATUS = 429


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """429 Too Many Requests with LOCKED_OUT_MESSAGE, for the site's and the admin's login (a
    page) and the API's token endpoint (JSON).

    429 rather than 403: the credentials may be right; what is refused is their rate. The page
    says neither whether the password was right nor when exactly the lockout ends, and
    Retry-After gives the full cool-off (each refused attempt restarts it)."""
    if request.path.startswith("/api/"):
        # The API's one error shape (api/errors.py), for apps rather than people.
        response = JsonResponse(
            {"error": {"type": "rate_limit_error", "code": "login_locked_out",
                       "message": LOCKED_OUT_MESSAGE, "param": None}},
            status=LOCKED_OUT_STATUS,
        )
        response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
        return response
    response = render(
        request, "registration/locked_out.html", {"lockout_message": LOCKED_OUT_MESSAGE},
        status=LOCKED_OUT_STATUS,
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
