"""A plain Python peer for `npm run bench -- --peer celery`: FastAPI -> S3 -> Celery -> Redis.

The smallest honest stack that does what CXR Classify does for one image: the web process takes
the upload, stores it in S3 and queues a Celery task; a Celery worker (prefork, one ONNX Runtime
thread per child) fetches the image from S3, decodes and resizes it with Pillow, runs the model
and returns the scores through the Redis result backend, which the web process waits on. No
accounts, no request records, no dispatch tokens, no idempotency: that is the point of a peer.

Configured by the environment (bench.ts sets it): PEER_MODEL_DIR (model.onnx, spec.json),
PEER_REDIS_URL, S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY.
"""

import asyncio
import io
import json
import os
import uuid

import boto3
import numpy as np
import onnxruntime as ort
import redis.asyncio as aioredis
from celery import Celery
from celery.signals import worker_process_init
from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image, ImageOps

MODEL_DIR = os.environ["PEER_MODEL_DIR"]
with open(os.path.join(MODEL_DIR, "spec.json"), encoding="utf-8") as f:
    MODEL = json.load(f)  # {"labels": [...], "input_spec": {...}, "keep_aspect_ratio": bool}
SPEC = MODEL["input_spec"]
BUCKET = os.environ["S3_BUCKET"]

celery = Celery("peer", broker=os.environ["PEER_REDIS_URL"], backend=os.environ["PEER_REDIS_URL"])
celery.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                   worker_prefetch_multiplier=1, task_acks_late=True, result_expires=3600)


def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name=os.environ["S3_REGION"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    )


_worker = {}


@worker_process_init.connect
def _load_model(**_):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    _worker["session"] = ort.InferenceSession(os.path.join(MODEL_DIR, "model.onnx"), options,
                                              providers=["CPUExecutionProvider"])
    _worker["s3"] = s3_client()


def preprocess(data: bytes) -> np.ndarray:
    """Decode, orient, fit to the input size (letterboxed when the dataset keeps the ratio),
    normalise: the same steps as the worker's preprocess.ts, with Pillow's Lanczos."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8))
    image = image.convert("L" if SPEC["channels"] == 1 else "RGB")
    size = (SPEC["width"], SPEC["height"])
    if MODEL["keep_aspect_ratio"]:
        fitted = ImageOps.contain(image, size, Image.LANCZOS)
        canvas = Image.new(image.mode, size)
        canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
        image = canvas
    else:
        image = image.resize(size, Image.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32).reshape(SPEC["height"], SPEC["width"], SPEC["channels"])
    x = (pixels / 255.0 - np.array(SPEC["mean"], np.float32)) / np.array(SPEC["std"], np.float32)
    if SPEC["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return x[np.newaxis].astype(np.float32)


def scores_of(raw: np.ndarray) -> list:
    raw = raw.astype(np.float64).ravel()
    looks_like_probabilities = bool(np.all((raw >= 0) & (raw <= 1)) and abs(raw.sum() - 1) < 1e-3)
    if SPEC.get("output") == "logits" or (SPEC.get("output", "auto") == "auto" and not looks_like_probabilities):
        e = np.exp(raw - raw.max())
        raw = e / e.sum()
    return [{"label": label, "score": float(s)} for label, s in zip(MODEL["labels"], raw)]


@celery.task(name="classify")
def classify(key: str) -> dict:
    data = _worker["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()
    session = _worker["session"]
    (raw,) = session.run(None, {session.get_inputs()[0].name: preprocess(data)})
    scores = scores_of(raw)
    best = max(scores, key=lambda s: s["score"])
    return {"label": best["label"], "score": best["score"], "scores": scores}


app = FastAPI()
_s3 = s3_client()
# Waiting on Celery's own AsyncResult.get() from several threads at once breaks its shared Redis
# result consumer (a protocol error under 16 in flight), so the web process waits the way that
# consumer does, one subscription per request: the Redis result backend SETs and PUBLISHes each
# result under celery-task-meta-<id>.
_redis = aioredis.from_url(os.environ["PEER_REDIS_URL"])


async def wait_for_result(task_id: str, timeout: float, send) -> dict:
    key = f"celery-task-meta-{task_id}"
    pubsub = _redis.pubsub()
    await pubsub.subscribe(key)
    try:
        await send()
        raw = await _redis.get(key)
        deadline = asyncio.get_running_loop().time() + timeout
        while raw is None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise HTTPException(504, "no result in time")
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                raw = message["data"]
    finally:
        await pubsub.unsubscribe(key)
        await pubsub.aclose()
    meta = json.loads(raw)
    if meta["status"] != "SUCCESS":
        raise HTTPException(500, f"task {meta['status']}: {meta.get('result')}")
    return meta["result"]


@app.post("/classify", status_code=200)
async def submit(image: UploadFile = File(...), wait: float = 0):
    data = await image.read()
    if not data:
        raise HTTPException(400, "empty image")
    key = f"peer/{uuid.uuid4().hex}"
    await run_in_threadpool(_s3.put_object, Bucket=BUCKET, Key=key, Body=data)
    task_id = uuid.uuid4().hex
    if wait <= 0:
        await run_in_threadpool(classify.apply_async, args=[key], task_id=task_id)
        return {"id": task_id, "state": "queued"}
    # Subscribed before the task is sent, so its result cannot be published unseen.
    result = await wait_for_result(task_id, wait, lambda: run_in_threadpool(classify.apply_async, args=[key], task_id=task_id))
    return {"id": task_id, "state": "classified", "result": result}


@app.get("/health")
async def health():
    return {"ok": True}
