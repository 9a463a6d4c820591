import pytest

from lightwire.examples.arith_agent import ANSWER, calculate


def test_the_calculator_evaluates_arithmetic_and_nothing_else():
    assert calculate("12 + 3 * (4 - 1)") == 21
    assert calculate("-7 / 2") == -3.5
    for bad in ("__import__('os')", "2 ** 10", "x + 1"):
        with pytest.raises(ValueError):
            calculate(bad)


def test_answers_are_read_from_the_final_line():
    assert ANSWER.search("so 5 + 3 = 8\nAnswer: 8").group(1) == "8"
    assert ANSWER.search("answer = -2.5").group(1) == "-2.5"
    assert ANSWER.search("the result is 8") is None
