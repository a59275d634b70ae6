package main

// The integrator replaces this file with blank imports of the plugin
// packages berthd ships (content, snapshotters, metadata, services, runtime).
