"""trainer.checkpoint: what `train --fit-all` saves, `export` loads back into the same model."""

import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from engines.errors import MestreamError  # noqa: E402
from trainer.checkpoint import load_checkpoint, load_model, save_checkpoint  # noqa: E402
from trainer.models.registry import get_family  # noqa: E402

CLASSES = ["negative", "positive", "surprise"]


def _save(path, family_name="ststnorm"):
    family = get_family(family_name)
    torch.manual_seed(0)
    model = family.build(len(CLASSES))
    save_checkpoint(path, family, model, classes=CLASSES, recipe=family.recipe, seed=1, protocol="loso",
                    scores={"full": {"uf1": 0.7}}, selection="fixed recipe",
                    training={"dataset": "megc2019", "samples": 442, "subjects": 68})
    return model


def test_a_saved_model_loads_back_with_the_same_weights_and_outputs(tmp_path):
    model = _save(tmp_path / "run" / "model.pt").eval()
    family, loaded, ckpt = load_model(tmp_path / "run")  # the folder is enough
    assert family.name == "ststnorm" and not loaded.training
    assert ckpt["classes"] == CLASSES and ckpt["seed"] == 1 and ckpt["inputs"][0]["name"] == "flow"
    flow = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(flow), loaded(flow))


def test_the_saved_file_holds_the_keys_older_checkpoints_have(tmp_path):
    _save(tmp_path / "model.pt", "ststnet")
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert set(ckpt) == {"family", "num_classes", "state_dict", "classes", "inputs", "recipe", "seed", "training",
                         "protocol", "scores", "selection", "crop_window"}
    assert ckpt["crop_window"] is None  # crops as they come, unless the training inputs were re-cut
    assert ckpt["recipe"]["epochs"] == get_family("ststnet").recipe.epochs and ckpt["num_classes"] == 3


def test_weights_of_another_family_are_refused_in_one_line(tmp_path):
    _save(tmp_path / "model.pt", "ststnet")
    ckpt = torch.load(tmp_path / "model.pt", weights_only=False)
    ckpt["family"] = "featref"
    torch.save(ckpt, tmp_path / "model.pt")
    with pytest.raises(MestreamError, match="weights do not fit family 'featref'") as info:
        load_model(tmp_path / "model.pt")
    assert "\n" not in str(info.value)
