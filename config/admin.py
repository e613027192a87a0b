"""django-axes' login records in the back office are audit rows: viewed, never edited (no Save
button). Deleting an access attempt stays possible: it unlocks that username and address, as
`manage.py axes_reset` does."""

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin


class NotEditable:
    def has_change_permission(self, request, obj=None):
        return False


class AccessAttemptRecordAdmin(NotEditable, AccessAttemptAdmin):
    pass


class AccessLogRecordAdmin(NotEditable, AccessLogAdmin):
    pass


class AccessFailureLogRecordAdmin(NotEditable, AccessFailureLogAdmin):
    pass


for model, model_admin in ((AccessAttempt, AccessAttemptRecordAdmin),
                           (AccessLog, AccessLogRecordAdmin),
                           (AccessFailureLog, AccessFailureLogRecordAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
