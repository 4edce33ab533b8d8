"""edge.progress: a redrawn bar on a terminal, sparse whole lines otherwise, nothing when silenced."""
import io

from edge.progress import Progress, silenced


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(stream, total, steps, seconds_per_step=0.0, clock=None):
    clock = clock or Clock()
    with Progress("calibration", total=total, stream=stream, clock=clock) as progress:
        for _ in range(steps):
            clock.now += seconds_per_step
            progress.update()
    return stream.getvalue()


def test_terminal_redraws_one_line_and_ends_it():
    text = run(Terminal(), total=50, steps=50, seconds_per_step=0.05)
    assert "\n" not in text[:-1] and text.endswith("\n")
    frames = text.split("\r")[1:]
    assert 10 <= len(frames) <= 30  # throttled: not one redraw per step
    assert frames[-1].startswith("calibration [########################] 50/50 100% 0:02")
    assert "eta" in frames[0] and "[#" in frames[len(frames) // 2]


def test_a_pipe_gets_a_line_per_tenth_and_no_carriage_returns():
    lines = run(io.StringIO(), total=200, steps=200, seconds_per_step=0.01).splitlines()
    assert "\r" not in "".join(lines) and len(lines) == 10
    assert lines[0].startswith("calibration: 20/200  10% 0:00") and lines[-1].startswith("calibration: 200/200 100%")


def test_a_pipe_gets_a_line_every_10_seconds_of_slow_work():
    lines = run(io.StringIO(), total=1000, steps=30, seconds_per_step=1.0).splitlines()
    assert [line.split()[1] for line in lines] == ["10/1000", "20/1000", "30/1000"]  # 30 s, 3 % done


def test_unknown_total_counts_and_the_final_count_is_shown():
    assert run(io.StringIO(), total=None, steps=7).splitlines() == ["calibration: 7 0:00"]
    assert run(Terminal(), total=None, steps=3).split("\r")[-1] == "calibration 3 0:00\x1b[K\n"


def test_silenced_shows_nothing_and_still_counts():
    stream = Terminal()
    with silenced():
        progress = Progress("x", total=5, stream=stream)
        for _ in range(5):
            progress.update()
        progress.close()
    assert stream.getvalue() == "" and progress.count == 5
    assert run(Terminal(), total=1, steps=1) != ""  # only inside the block


def test_a_long_step_is_shown_when_it_starts_and_again_while_it_runs(monkeypatch):
    """A step (an engine build, a self-test) has no count to advance, so a heartbeat shows it is alive."""
    import time

    import edge.progress

    monkeypatch.setattr(edge.progress, "LINE_EVERY_S", 0.01)
    stream = io.StringIO()
    with Progress("models install", total=2, stream=stream, eta=False) as progress:
        with progress.step("building the engine"):
            for _ in range(3000):  # wait for a heartbeat line (due after LINE_EVERY_S); give up after ~30 s
                if stream.getvalue().count("\n") >= 2:
                    break
                time.sleep(0.01)
        with progress.step("self-test"):
            pass
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("models install: 0/2   0% 0:00 building the engine")
    assert lines[1].startswith("models install: 0/2") and lines[1].endswith("building the engine")
    assert any(line.startswith("models install: 1/2  50%") and line.endswith("self-test") for line in lines)
    assert lines[-1].startswith("models install: 2/2 100%") and "eta" not in stream.getvalue()
