"""Card-network caps hold for randomly generated policies (hypothesis): whatever the schedule,
no window of a network's cap ever holds more retries on one card than the network allows."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recovery import policy

START = datetime(2026, 1, 1, tzinfo=UTC)

rules_strategy = st.builds(
    policy.Rules,
    retry_hours=st.lists(st.integers(1, 24 * 60), min_size=1, max_size=60, unique=True),
    network_retry_minutes=st.lists(st.integers(1, 600), max_size=10),
    hard_decline_codes=st.just(["lost_card"]),
    network_error_codes=st.just(["processing_error"]),
    do_not_honor_limit=st.integers(0, 100),
)


def exceeded(times: list[datetime], cap: policy.NetworkCap) -> bool:
    times = sorted(times)
    return any(times[i + cap.retries] - times[i] < cap.window
               for i in range(len(times) - cap.retries))


@settings(max_examples=200, deadline=None)
@given(
    rules=rules_strategy,
    brand=st.sampled_from(["visa", "mastercard"]),
    cases=st.integers(1, 4),
    codes=st.lists(st.sampled_from(["insufficient_funds", "processing_error", "try_again_later"]),
                   min_size=1, max_size=80),
)
def test_caps_hold_per_card_across_cases(rules, brand, cases, codes):
    """Several cases on one card, every retry failing: the schedule, capped, stays legal."""
    retries: list[datetime] = []
    for case_number in range(cases):
        opened = START + timedelta(hours=case_number)
        failed_at, in_a_row = opened, 0
        for code in codes:
            kind = policy.classify(rules, failure_code="card_declined", decline_code=code,
                                   generic_declines_before=0)
            in_a_row = in_a_row + 1 if kind == policy.FailureKind.NETWORK else 0
            at = policy.next_retry_at(rules, kind=kind, opened_at=opened, failed_at=failed_at,
                                      network_errors_in_a_row=in_a_row)
            if at is None:
                break
            at = policy.capped(brand, at=at, retries_on_card=retries)
            if at > opened + rules.schedule_length:
                break
            assert at >= failed_at
            retries.append(at)
            failed_at = at
    assert not exceeded(retries, policy.NETWORK_CAPS[brand])


def test_hard_declines_and_authentication_are_never_retried():
    rules = policy.Rules([24, 48], [30], ["lost_card"], ["processing_error"], 2)
    for code, kind in [("lost_card", "hard"), ("authentication_required", "authentication")]:
        assert policy.classify(rules, failure_code="card_declined", decline_code=code,
                               generic_declines_before=0) == kind
        assert policy.next_retry_at(rules, kind=policy.FailureKind(kind), opened_at=START,
                                    failed_at=START, network_errors_in_a_row=0) is None
    # do_not_honor: soft up to the limit, then hard.
    assert policy.classify(rules, failure_code="card_declined", decline_code="do_not_honor",
                           generic_declines_before=1) == "soft"
    assert policy.classify(rules, failure_code="card_declined", decline_code="do_not_honor",
                           generic_declines_before=2) == "hard"


def test_network_errors_retry_sooner_with_backoff():
    rules = policy.Rules([24, 48], [30, 120], [], ["processing_error"], 3)
    kind = policy.FailureKind.NETWORK
    first = policy.next_retry_at(rules, kind=kind, opened_at=START, failed_at=START,
                                 network_errors_in_a_row=1)
    second = policy.next_retry_at(rules, kind=kind, opened_at=START, failed_at=first,
                                  network_errors_in_a_row=2)
    third = policy.next_retry_at(rules, kind=kind, opened_at=START, failed_at=second,
                                 network_errors_in_a_row=3)
    assert (first - START, second - first) == (timedelta(minutes=30), timedelta(minutes=120))
    assert third == START + timedelta(hours=24)  # then the schedule
