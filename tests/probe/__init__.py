"""Tests of the container probe (``e2e/probe``) and of the GPU machine's check flow."""
