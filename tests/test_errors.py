"""sciml's exceptions cross process boundaries (pickle, DataLoader workers) as one clear message."""

import pickle

import pytest
from torch.utils.data import DataLoader, Dataset

from sciml.errors import DataFormatError
from sciml.zoo.files import IntegrityError


def test_data_format_error_pickles_with_its_fields():
    err = IntegrityError("/x/y.h5", "bad hash", key="weights", expected="abc", found="def")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is IntegrityError
    assert str(back) == str(err) == "/x/y.h5 [key 'weights']: bad hash; expected abc, found def"
    assert (back.path, back.key, back.expected, back.found) == ("/x/y.h5", "weights", "abc", "def")


class _Broken(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        raise DataFormatError("/data/f.h5", "truncated", key="u")


def test_error_raised_in_a_dataloader_worker_arrives_as_itself_in_one_line():
    with pytest.raises(DataFormatError) as info:
        next(iter(DataLoader(_Broken(), num_workers=1)))
    assert str(info.value) == "/data/f.h5 [key 'u']: truncated"
