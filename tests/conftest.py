import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

collect_ignore = ["fixtures/make_hf_fixtures.py"]  # needs torch and transformers: run by hand (see its docstring)
