"""The analysis worker: claims (worker.claims), one job (worker.job), recovery of lost jobs
(worker.recovery) and the per-process model (worker.runtime). detector.tasks wraps them for Celery.
"""
