"""gunicorn's logger, scrubbed: named by `logger_class` in gunicorn.conf.py."""

from gunicorn.glogging import Logger

from config.logging import ScrubSecretsFilter


class GunicornLogger(Logger):
    """gunicorn's logger with Paydesk's scrubbing on its access log and its error log, whatever
    they are written to (stdout, a file, syslog). Named by `logger_class` in gunicorn.conf.py."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, ScrubSecretsFilter) for f in log.filters):
                log.addFilter(ScrubSecretsFilter())
