from trainer.data.clips import not_frame_numbers
from trainer.data.sheets import Row


def test_a_row_without_frame_numbers_is_skipped_naming_its_line_and_cells():
    row = Row(17, {"Onset": 12, "Apex": "/", "Offset": None})
    assert not_frame_numbers(row, ("Onset", "Apex", "Offset")) == \
        "line 17: onset/apex/offset 12/'/'/None are not frame numbers"
