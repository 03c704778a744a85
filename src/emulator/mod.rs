//! A faithful local Entra/Graph/ARM/Log Analytics/Lacework tenant for tests, demo and dev.
