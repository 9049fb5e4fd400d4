"""The g++ C simulation: build and cache, faulty projects, fault/cone/trace harnesses."""
