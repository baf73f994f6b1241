"""RQ queues, jobs and the operator presence model (see the operator-queue issue)."""
