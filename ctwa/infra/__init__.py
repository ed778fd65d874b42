"""What every capability leans on: exit codes and errors, profiles and secrets, masking,
durations, text files, ports, environment variable names, bundled resources."""
