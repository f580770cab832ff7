import cv2
import numpy as np
import pytest

from ml_core.media.boxes import iou
from ml_core.media.extraction import ExtractConfig, extract_faces
from ml_core.media.face_tracking import Tracker
from ml_core.media.faces import PYRAMID_STEP, Detection, aligned_scale, detect
from tests.helpers.videos import astronaut_bgr, face_frames, face_patch, make_face_video, write_video

VIDEOS = "/work/shared/videos"


def test_the_working_scale_is_a_level_of_dlibs_full_resolution_pyramid():
    for width, height in ((1920, 1080), (1280, 720), (320, 240), (3840, 2160)):
        scale = aligned_scale(width, height, 800)
        k = np.log(scale / 2) / np.log(PYRAMID_STEP)
        assert k == pytest.approx(round(k))
        assert max(width, height) * scale <= 800
        # The largest such scale, capped at dlib's own 2x upsampling.
        assert scale == 2.0 or max(width, height) * scale / PYRAMID_STEP > 800


def test_boxes_at_the_working_scale_match_full_resolution_hog():
    import dlib

    # The astronaut on a 1280x720 canvas, face about 200 px: like a 720p clip.
    frame = np.full((720, 1280, 3), 100, np.uint8)
    frame[150:662, 400:912] = cv2.resize(face_patch(), (512, 512))
    full = dlib.get_frontal_face_detector()(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 1)
    assert len(full) == 1
    full_box = (full[0].top(), full[0].right(), full[0].bottom(), full[0].left())
    ours = detect(frame, aligned_scale(1280, 720, 800))
    assert len(ours) == 1
    assert iou(ours[0].box, full_box) >= 0.9
    assert ours[0].confidence > 0


def test_boxes_are_clamped_to_the_frame():
    # A face cut by the left border: dlib may return a box starting left of the frame.
    image = astronaut_bgr()[:, 150:]
    for det in detect(image, 1.0):
        top, right, bottom, left = det.box
        assert 0 <= left < right <= image.shape[1] and 0 <= top < bottom <= image.shape[0]


def test_the_tracker_links_by_overlap_without_encodings():
    tracker = Tracker()
    image = np.zeros((100, 100, 3), np.uint8)
    assert tracker.update(image, [Detection((10, 60, 60, 10), 1.0)]) == [0]
    assert tracker.update(image, [Detection((12, 62, 62, 12), 1.0), Detection((60, 99, 99, 60), 1.0)]) == [
        0,
        1,
    ]
    assert tracker.encodings_computed == 0


def test_a_lone_face_that_moved_a_little_keeps_its_identity_without_encodings():
    tracker = Tracker()
    image = np.zeros((200, 300, 3), np.uint8)
    assert tracker.update(image, [Detection((50, 100, 100, 50), 1.0)]) == [0]
    assert tracker.update(image, [Detection((60, 170, 110, 120), 1.0)]) == [0]  # no overlap, near
    assert tracker.encodings_computed == 0


def test_the_tracker_relinks_a_jumping_face_by_its_encoding():
    # Same face, far from where it was: no overlap, so only the encoding can link it.
    size = (640, 360)
    left = face_frames(count=1, size=size, face_size=200, move=False)[0]
    right = np.full_like(left, 110)
    right[80:280, 420:620] = cv2.resize(face_patch(), (200, 200))
    tracker = Tracker()
    first = detect(left, 1.0)
    second = detect(right, 1.0)
    assert len(first) == len(second) == 1 and iou(first[0].box, second[0].box) == 0
    assert tracker.update(left, first) == [0]
    assert tracker.update(right, second) == [0]
    assert tracker.encodings_computed >= 1


def test_two_people_give_two_identities_with_the_larger_presence_first(tmp_path):
    frames = face_frames(count=20, size=(480, 240), face_size=200, second_face=True)
    # The second person leaves for the last 8 frames: the first one is the main identity.
    for frame in frames[12:]:
        frame[:, 240:] = 110
    path = write_video(tmp_path / "two.mp4", frames)
    extraction = extract_faces(path, ExtractConfig(frames=20))
    assert [i.frame_count for i in extraction.identities] == [20, 12]
    assert extraction.main_identity == 0
    main_left = [face.box[3] for _, face in extraction.track()]
    other_left = [face.box[3] for _, face in extraction.track(1)]
    assert max(main_left) < 240 <= min(other_left)
    assert len(extraction.missing_frames(1)) == 8


def test_a_one_off_false_detection_does_not_become_an_identity(tmp_path):
    frames = face_frames(count=20, size=(480, 240), face_size=200)
    frames[5][10:210, 280:480] = cv2.resize(face_patch(), (200, 200))[:, ::-1]  # appears once
    path = write_video(tmp_path / "once.mp4", frames)
    # Whole-frame scans on every frame, so the one-off is seen whichever frame it is on.
    extraction = extract_faces(path, ExtractConfig(frames=20, full_scan_every=1))
    assert len(extraction.identities) == 1
    assert any("only one sampled frame" in w for w in extraction.warnings)


@pytest.mark.slow
def test_both_people_are_found_in_a_real_two_person_clip():
    extraction = extract_faces(f"{VIDEOS}/real/ghost_input_2person.mp4", ExtractConfig(frames=20))
    assert len(extraction.identities) >= 2
    assert all(i.frame_count >= 18 for i in extraction.identities[:2])


@pytest.mark.slow
def test_the_main_face_is_found_in_almost_every_frame_of_a_real_clip():
    extraction = extract_faces(f"{VIDEOS}/real/ghost_input_obama_short.mp4", ExtractConfig(frames=20))
    assert len(extraction.track()) >= 19
    assert len(extraction.identities) == 1


def test_the_cnn_detector_is_available(tmp_path):
    path = make_face_video(tmp_path / "face.mp4", count=10, size=(160, 120), face_size=100)
    extraction = extract_faces(path, ExtractConfig(frames=10, detector="cnn", work_max_side=200))
    assert len(extraction.track()) >= 8


def test_region_searches_find_the_same_boxes_as_whole_frame_scans(tmp_path):
    path = make_face_video(tmp_path / "face.mp4", count=40, size=(640, 360), face_size=150)
    everywhere = extract_faces(path, ExtractConfig(frames=20, full_scan_every=1))
    regions = extract_faces(path, ExtractConfig(frames=20))
    assert regions.stats["region_scans"] >= 10
    assert regions.stats["whole_frame_scans"] < everywhere.stats["whole_frame_scans"] == 20
    assert len(regions.track()) == len(everywhere.track()) == 20
    # The region search scans the whole-frame scan's own pyramid levels: the same windows win.
    assert [f.box for _, f in regions.track()] == [f.box for _, f in everywhere.track()]


def test_a_face_that_jumps_out_of_its_region_is_found_by_a_whole_frame_scan(tmp_path):
    # The face alternates between the far left and the far right: no region can hold it.
    frames = []
    patch = cv2.resize(face_patch(), (150, 150))
    for i in range(20):
        frame = np.full((300, 800, 3), 110, np.uint8)
        x = 10 if i % 2 == 0 else 640
        frame[70:220, x : x + 150] = patch
        frames.append(frame)
    path = write_video(tmp_path / "jumps.mp4", frames)
    extraction = extract_faces(path, ExtractConfig(frames=20))
    assert len(extraction.track()) == 20
    assert extraction.stats["whole_frame_scans"] == 20


def test_a_person_who_arrives_later_is_picked_up_by_the_next_whole_frame_scan(tmp_path):
    frames = face_frames(count=20, size=(480, 240), face_size=200, second_face=True)
    for frame in frames[:9]:
        frame[:, 240:] = 110  # the second person arrives at frame 9, between whole-frame scans
    path = write_video(tmp_path / "arrives.mp4", frames)
    extraction = extract_faces(path, ExtractConfig(frames=20, full_scan_every=4))
    assert len(extraction.identities) == 2
    late = extraction.identities[1]
    # Found from frame 12 (the next whole-frame scan) on, and in no frame before 9.
    assert late.frame_count == 8
    assert min(f.index for f in extraction.frames if f.face(late.id)) == 12


def test_a_face_that_becomes_too_small_for_the_working_scale_is_found_by_a_closer_look(tmp_path):
    # Two people; the second walks away: from frame 6 on, their face is far below what the
    # whole-frame scan at the working scale can see (the first person keeps that scan busy).
    rng = np.random.default_rng(0)
    frames = []
    for i in range(12):
        frame = np.full((720, 1280, 3), 105, np.uint8) + rng.integers(0, 8, (720, 1280, 3), dtype=np.uint8)
        frame[150:510, 80:440] = cv2.resize(face_patch(), (360, 360))
        side = 240 if i < 6 else 130
        frame[200 : 200 + side, 800 : 800 + side] = cv2.resize(face_patch()[:, ::-1], (side, side))
        frames.append(frame)
    path = write_video(tmp_path / "walks_away.mp4", frames, fps=5.0)
    extraction = extract_faces(path, ExtractConfig(frames=12))
    assert extraction.stats["close_looks"] >= 1
    assert [i.frame_count for i in extraction.identities] == [12, 12]
    far = [face.box for frame, face in extraction.track(1) if frame.index >= 6]
    assert len(far) == 6 and all(box[1] - box[3] < 100 for box in far)


def _face_on_canvas(side, seed):
    rng = np.random.default_rng(seed)
    frame = np.full((720, 1280, 3), 105, np.uint8) + rng.integers(0, 8, (720, 1280, 3), dtype=np.uint8)
    frame[100 : 100 + side, 400 : 400 + side] = cv2.resize(face_patch(), (side, side))
    return frame


def test_whole_frame_scans_go_finer_for_small_faces_and_back_once_they_are_gone(tmp_path):
    small = [_face_on_canvas(300, i) for i in range(10)]  # found on the working scale's finest level
    stays = extract_faces(write_video(tmp_path / "small.mp4", small, fps=5.0), ExtractConfig(frames=10))
    assert stays.stats["final_scale"] > stays.stats["work_scale"]
    comes_closer = small[:4] + [_face_on_canvas(560, i) for i in range(6)]
    back = extract_faces(
        write_video(tmp_path / "closer.mp4", comes_closer, fps=5.0), ExtractConfig(frames=10)
    )
    assert back.stats["final_scale"] == back.stats["work_scale"]
    assert len(back.track()) == 10
