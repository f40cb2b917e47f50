import pytest

from alfia.text.writer import BANDS, band_of, format_number


@pytest.mark.parametrize(
    "value, decimals, expected",
    [(2.25, 1, "2.3"), (2.35, 1, "2.4"), (-0.04, 1, "0.0"), (-1.25, 1, "-1.3"), (14.5, 0, "15"), (7, 0, "7")],
)
def test_format_number_rounds_half_away_from_zero(value, decimals, expected):
    assert format_number(value, decimals) == expected


def test_band_of_uses_the_four_cut_points():
    cuts = [1, 2, 3, 4]
    assert [band_of(v, cuts) for v in (0.5, 1, 1.5, 2.5, 3.5, 4, 9)] == [
        BANDS[0], BANDS[0], BANDS[1], BANDS[2], BANDS[3], BANDS[3], BANDS[4]]
