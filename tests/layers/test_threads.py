"""Groups of work on single-threaded pool threads: results, per-thread state, when not to."""
import multiprocessing

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from corrkit.models.refiners.match_to_match import MatchToMatchRefiner
from corrkit.layers.threads import auto_workers, can_leave_thread, run_groups

CPU = torch.device('cpu')


def state(_):
    return (torch.get_num_threads(), torch.is_grad_enabled(),
            torch.is_inference_mode_enabled(), torch.is_autocast_enabled('cpu'),
            torch.get_autocast_dtype('cpu'))


def test_results_come_in_order_from_single_threaded_workers():
    threads = torch.get_num_threads()
    assert run_groups(lambda g: sum(g), [range(0, 10, 3), range(1, 10, 3), range(2, 10, 3)],
                      3) == [18, 12, 15]
    assert {s[0] for s in run_groups(state, range(4), 2)} == {1}
    assert torch.get_num_threads() == threads  # the caller's own setting is left alone


@pytest.mark.parametrize('mode', ['no_grad', 'inference', 'autocast', 'plain'])
def test_the_callers_grad_inference_and_autocast_state_goes_with_the_work(mode):
    contexts = {'no_grad': torch.no_grad, 'inference': torch.inference_mode,
                'autocast': lambda: torch.autocast('cpu', dtype=torch.bfloat16),
                'plain': torch.enable_grad}
    with contexts[mode]():
        here = state(None)[1:]
        there = run_groups(state, range(2), 2)
    assert [s[1:] for s in there] == [here, here]
    assert here != state(None)[1:] or mode == 'plain'


def test_the_first_error_is_raised():
    def fail(g):
        if g == 1:
            raise KeyError('group 1')
        return g

    with pytest.raises(KeyError, match='group 1'):
        run_groups(fail, range(3), 2)


def test_work_stays_on_the_calling_thread_under_modes_and_the_profiler():
    assert can_leave_thread()
    assert auto_workers(CPU, 9, limit=4) == min(4, 9)
    assert auto_workers(CPU, 1) == 1 and auto_workers(torch.device('cuda'), 9) == 1
    with FlopCounterMode(display=False):
        assert not can_leave_thread() and auto_workers(CPU, 9, limit=4) == 1
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        assert not can_leave_thread()
    with torch.autograd.graph.save_on_cpu():
        assert not can_leave_thread()
    assert can_leave_thread()


def _refine_in_child(queue):
    torch.manual_seed(0)
    refiner = MatchToMatchRefiner(in_channels=3, depth=1, chunk=8, workers=2)
    queue.put(refiner(torch.rand(1, 3, 3, 3, 3, 3)).shape)


def test_a_forked_child_builds_its_own_pool():
    run_groups(state, range(2), 2)  # the parent's pool exists, its threads do not fork
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    child = context.Process(target=_refine_in_child, args=(queue,))
    child.start()
    child.join(120)
    assert child.exitcode == 0, 'the child hung or failed'
    assert queue.get(timeout=5) == torch.Size([1, 1, 3, 3, 3, 3])
