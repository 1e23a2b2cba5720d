"""What the owner and the operator see: dashboard figures, the chart, metrics, readiness."""
