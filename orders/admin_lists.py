"""What keeps a back-office list fast at a million rows: a count that stops early, filters that
never scan the table for their choices, and a search that picks an index by the shape of what
staff typed. Used by the orders admin and by payments' (which builds on orders)."""

from __future__ import annotations

import datetime
import re

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections, models, router
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.functional import cached_property

# Beyond this many matching rows a list stops counting: it pages through the newest ones and
# says "more than" (or, for a whole table, PostgreSQL's estimate of its size).
COUNT_LIMIT = 10_000
# A search term of no known shape is looked for in this many of the newest rows only. Small
# enough that PostgreSQL (default costs) joins the window's orders and customers by index: at
# 1,000,000 payments a window of 5,000 or 10,000 already tips it into reading every order
# (150 to 190 ms a query, bench/admin_lists), 2,000 takes 11 ms.
SEARCH_FALLBACK_WINDOW = 2_000

# The shapes of search terms (orders.models.new_order_number makes "PD-" + 10 hex digits).
ORDER_NUMBER = re.compile(r"PD-[0-9A-F]{10}", re.IGNORECASE)
CARD_LAST4 = re.compile(r"\d{4}")
STRIPE_ID = re.compile(r"(?P<prefix>[a-z]+)_[0-9A-Za-z_]+")


class BoundedCountPaginator(Paginator):
    """Counts at most COUNT_LIMIT rows (`SELECT COUNT(*) FROM (... LIMIT n)`), so a list of a
    million rows costs what a list of ten thousand does. Past the limit, pages stop at the limit
    (no page deep in the table, whose OFFSET would walk it) and `estimate` holds PostgreSQL's
    statistics for the whole table when the list is not filtered."""

    count_limit = COUNT_LIMIT

    @cached_property
    def counted(self) -> int:
        # Only the ids: the rows' joins and computed columns would be evaluated for every row
        # counted, not only for the page shown.
        return self.object_list.values("pk")[: self.count_limit + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.count_limit)

    @cached_property
    def is_capped(self) -> bool:
        return self.counted > self.count_limit

    @cached_property
    def estimate(self) -> int | None:
        """About how many rows the table holds (pg_class.reltuples, kept by ANALYZE), when the
        list is capped and unfiltered; None otherwise or when the database has no estimate."""
        query = self.object_list.query
        if not self.is_capped or query.where:
            return None
        return table_estimate(query.model)


def table_estimate(model: type[Model]) -> int | None:
    connection = connections[router.db_for_read(model)]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1: never vacuumed or analyzed yet.
    return row[0] if row and row[0] >= 0 else None


def distinct_values(model: type[Model], column: str) -> list[str]:
    """The distinct values of an indexed column, read by hopping through its index (one probe per
    value, a "loose index scan"), not by a DISTINCT over every row. Needs an index whose first
    column is `column`."""
    connection = connections[router.db_for_read(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    name = connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE v(x) AS ("  # noqa: S608 - quoted identifiers, no input
        f" SELECT (SELECT {name} FROM {table} ORDER BY {name} LIMIT 1)"
        f" UNION ALL"
        f" SELECT (SELECT {name} FROM {table} WHERE {name} > v.x ORDER BY {name} LIMIT 1)"
        f" FROM v WHERE v.x IS NOT NULL"
        f") SELECT x FROM v WHERE x IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


class IndexedValuesFilter(admin.SimpleListFilter):
    """A filter on a column's values, listed through its index (`distinct_values`), unlike
    Django's own filter for a field without choices, which reads every row to list them."""

    column = ""

    def lookups(self, request, model_admin):
        return [(value, value) for value in distinct_values(model_admin.model, self.column)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.column: self.value()})
        return queryset


class CurrencyFilter(IndexedValuesFilter):
    title = "currency"
    parameter_name = column = "currency"


class DateFilter(admin.DateFieldListFilter):
    """Django's date filter with yesterday and last month added, for accounting, and without "no
    date"/"has date". The same calendar as the dashboard's links (payments.selectors
    calendar_periods): days and months in the site's time zone."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        since, until = self.lookup_kwarg_since, self.lookup_kwarg_until
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        if not isinstance(field, models.DateTimeField):
            today = today.date()
        tomorrow = today + datetime.timedelta(days=1)
        month = today.replace(day=1)
        last_month = (month - datetime.timedelta(days=1)).replace(day=1)
        next_month = (month + datetime.timedelta(days=31)).replace(day=1)
        year = today.replace(month=1, day=1)
        self.links = (
            ("Any date", {}),
            ("Today", {since: today, until: tomorrow}),
            ("Yesterday", {since: today - datetime.timedelta(days=1), until: today}),
            ("Past 7 days", {since: today - datetime.timedelta(days=7), until: tomorrow}),
            ("This month", {since: month, until: next_month}),
            ("Last month", {since: last_month, until: month}),
            ("This year", {since: year, until: year.replace(year=year.year + 1)}),
        )


class RoutedSearchMixin:
    """A ModelAdmin search that routes a term by its shape to an exact, indexed lookup
    (`search_route`); a term of no known shape is looked for as Django does (icontains over
    `search_fields`), but only in the SEARCH_FALLBACK_WINDOW newest rows (by id), so no search
    reads a whole table."""

    search_fallback_window = SEARCH_FALLBACK_WINDOW

    def search_route(self, term: str) -> Q | None:
        """The lookup for `term`, or None when the term has no known shape."""
        return None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        route = self.search_route(term)
        if route is not None:
            return queryset.filter(route), False
        # The window as a range of ids, found first: PostgreSQL plans `id >= 123` from its
        # statistics, where `id IN (SELECT ... LIMIT n)` could send it through the whole table.
        oldest = (
            self.model._default_manager.order_by("-pk")
            .values_list("pk", flat=True)[self.search_fallback_window - 1:]
            .first()
        )
        if oldest is not None:
            queryset = queryset.filter(pk__gte=oldest)
        return super().get_search_results(request, queryset, term)


def email_route(term: str, field: str) -> Q | None:
    """An e-mail address: the exact address, in any case (an index on UPPER(email) serves it)."""
    if "@" in term and " " not in term:
        return Q(**{f"{field}__iexact": term})
    return None


def order_number_route(term: str, field: str) -> Q | None:
    if ORDER_NUMBER.fullmatch(term):
        return Q(**{field: term.upper()})
    return None


def stripe_prefix(term: str) -> str | None:
    """"pi" for "pi_3Nx...": the kind of Stripe object an id names."""
    match = STRIPE_ID.fullmatch(term)
    return match["prefix"] if match else None
