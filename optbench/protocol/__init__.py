"""The comparison protocol: suites, sweeps, --select stages, training options, schedules and targets."""
