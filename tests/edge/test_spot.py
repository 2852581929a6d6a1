"""The spot stage keeps one spotter per face: each face's frames go to its own window, events leave with its face_id."""

from test_regional_spotter import make_faces

from edge.messages import Message
from edge.stages.spot import FORGET_S, FaceSpotters


def two_faces(n, events_of_1=()):
    """Face messages of two faces on the same frames, as the track stage sends them: face 0 still, face 1
    with `events_of_1`, each with its own box."""
    still = make_faces(n, seed=1)
    moving = make_faces(n, events=events_of_1, seed=2)
    out = []
    for a, b in zip(still, moving):
        a.header.update(face_id=0, box=[10, 20, 200, 200])
        b.header.update(face_id=1, box=[400, 30, 180, 180])
        out += [a, b]
    return out


def run(stage, messages):
    stage.open()
    out = []
    for m in messages:
        out += stage.process(m)
    out += stage.flush()
    stage.close()
    return out


def test_an_expression_of_one_face_is_spotted_on_that_face_only():
    out = run(FaceSpotters(), two_faces(100, events_of_1=[(45, 49, 49, 54, 2.5)]))
    found = [m for m in out if m.topic == "interval"]
    assert len(found) == 1
    assert found[0].header["face_id"] == 1 and found[0].header["box"] == [400, 30, 180, 180]
    assert 46 <= found[0].header["apex"]["seq"] <= 52


def test_each_face_gets_its_own_spotter_on_its_first_found_frame():
    stage = FaceSpotters()
    stage.open()
    messages = two_faces(3)
    stage.process(Message("face", {"seq": 0, "fps": 30.0, "face_id": 5, "found": False}))
    assert stage.spotters == {}  # a face never found makes no spotter
    for m in messages:
        stage.process(m)
    assert sorted(stage.spotters) == [0, 1]
    assert stage.spotters[0] is not stage.spotters[1]
    stage.close()


def test_a_frame_without_any_face_restarts_every_window():
    messages = two_faces(40)
    stage = FaceSpotters()
    stage.open()
    for m in messages:
        stage.process(m)
    out = stage.process(Message("face", {"seq": 40, "fps": 30.0, "found": False}))  # no face_id: nobody there
    assert out == []
    restarts = []
    for m in two_faces(5):
        m.header["seq"] += 41
        restarts += [r for r in stage.process(m) if r.topic == "status"]
    stage.close()
    # both windows had been emptied by the faceless frame: nothing to restart, a fresh window each
    assert restarts == []  # (without it, each would restart now: "sequence jumped from 39 to 41")


def test_a_face_gone_for_a_while_loses_its_spotter():
    fps = 30.0
    n = int(FORGET_S * fps) + 20
    messages = two_faces(n)
    stage = FaceSpotters()
    stage.open()
    for m in messages[:20]:
        stage.process(m)
    for m in messages[20:]:
        if m.header["face_id"] == 0:  # face 1 has left: the tracker sends nothing more for it
            stage.process(m)
    assert sorted(stage.spotters) == [0]
    stage.close()


def test_a_spotter_status_names_its_face():
    messages = two_faces(30)
    jumped = messages[40:]
    for m in jumped:
        if m.header["face_id"] == 1:
            m.header["seq"] += 3  # face 1 missed three frames (its messages were dropped): its window restarts
    out = run(FaceSpotters(), messages[:40] + jumped)
    restarts = [m for m in out if m.topic == "status" and m.header["event"] == "restart"]
    assert [m.header["face_id"] for m in restarts] == [1]
