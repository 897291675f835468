import pytest

from lightning_cnn._utils.validation import check_choice, check_fraction, check_positive, check_probability


def test_check_choice_returns_valid_value():
    assert check_choice("pool", "avg", ("max", "avg")) == "avg"


def test_check_choice_message_names_argument_value_and_choices():
    with pytest.raises(ValueError) as err:
        check_choice("merge", "mena", ("mean", "gmean", "max"))
    assert (
        str(err.value)
        == "Expected merge to be one of ('mean', 'gmean', 'max'), but got 'mena'. Did you mean 'mean' or 'gmean'?"
    )


def test_check_choice_rejects_non_strings():
    with pytest.raises(ValueError, match=r"Expected pool to be one of \('max',\), but got 3\."):
        check_choice("pool", 3, ("max",))


@pytest.mark.parametrize(
    ("fn", "value", "message"),
    [
        (check_positive, 0, "Expected x to be > 0, but got 0."),
        (check_positive, -1.5, "Expected x to be > 0, but got -1.5."),
        (check_probability, 1.0, r"Expected x to be in \[0, 1\), but got 1.0."),
        (check_fraction, 0.0, r"Expected x to be in \(0, 1\), but got 0.0."),
        (check_positive, float("nan"), "Expected x to be > 0, but got nan."),
        (check_probability, float("nan"), r"Expected x to be in \[0, 1\), but got nan."),
        (check_fraction, float("nan"), r"Expected x to be in \(0, 1\), but got nan."),
    ],
)
def test_range_checks(fn, value, message):
    with pytest.raises(ValueError, match=message):
        fn("x", value)


def test_range_checks_reject_wrong_types():
    with pytest.raises(TypeError, match="Expected x to be a number, but got str '3'"):
        check_positive("x", "3")
    check_positive("x", 0, allow_zero=True)


def test_counts_must_be_ints():
    with pytest.raises(TypeError, match="Expected x to be an int, but got float 2.5."):
        check_positive("x", 2.5, integer=True)
    with pytest.raises(TypeError, match="Expected x to be an int, but got bool True."):
        check_positive("x", True, integer=True)
    check_positive("x", 3, integer=True)
