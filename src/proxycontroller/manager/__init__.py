"""Around the reconcile loop: building the stores, health and metrics endpoints, running until stopped."""
