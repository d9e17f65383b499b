from tinykube.kubelet.backoff import Backoff, format_duration


def test_first_restart_is_immediate_then_doubles_to_cap():
    b = Backoff(base=10, cap=300)
    key = "uid/c"
    assert not b.in_backoff_since(key, event_time=100, now=100)
    b.next(key, now=100)
    assert b.get(key) == 10
    assert b.in_backoff_since(key, event_time=101, now=105)
    assert not b.in_backoff_since(key, event_time=101, now=111.5)
    durations = []
    for i in range(8):
        b.next(key, now=120 + i)
        durations.append(b.get(key))
    assert durations == [20, 40, 80, 160, 300, 300, 300, 300]


def test_entry_resets_after_twice_the_cap():
    b = Backoff(base=10, cap=300)
    b.next("k", now=0)
    b.next("k", now=1)
    assert b.get("k") == 20
    # the container kept running for more than 10 minutes: start over
    assert not b.in_backoff_since("k", event_time=700, now=701)
    b.next("k", now=701)
    assert b.get("k") == 10


def test_remaining_and_forget():
    b = Backoff(base=1, cap=40)
    b.next("pod1/a", now=0)
    b.next("pod1/a", now=0)
    assert b.remaining("pod1/a", event_time=10, now=11) == 1
    b.forget("pod1/")
    assert b.get("pod1/a") == 0


def test_format_duration_like_go():
    assert format_duration(10) == "10s"
    assert format_duration(80) == "1m20s"
    assert format_duration(300) == "5m0s"
    assert format_duration(0.5) == "500ms"
    assert format_duration(2.5) == "2.5s"
