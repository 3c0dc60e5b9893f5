"""Sample data the project builds for itself: registry hives Windows could have written."""
