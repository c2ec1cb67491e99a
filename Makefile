# MSVLA: set-up, build, demo and tests. Every target installs what it needs; each step is skipped
# when its inputs have not changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
ROBOT ?= franka
EPISODES ?= 5

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds.xml
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export PYTHONDONTWRITEBYTECODE := 1

# Run a command inside the built workspace (venv + colcon overlay).
WS := source $(VENV)/bin/activate && export AMENT_PREFIX_PATH=$(CURDIR)/$(VENV):$${AMENT_PREFIX_PATH:-} && source install/setup.bash &&

PKG_SOURCES := $(shell find src msg config launch -type f -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: all setup build demo test benchmark eval eval-vehicle record train record-vehicle train-vehicle constraints clean

all: build

setup: $(VENV)/.deps-installed

$(VENV)/.deps-installed: requirements/ros-jazzy.txt requirements/python.txt requirements/constraints.txt scripts/fix_ros_cmake_paths.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	touch $(VENV)/COLCON_IGNORE
	$(PIP) install --quiet --upgrade "pip==26.3"
	$(PIP) install --quiet -c requirements/constraints.txt -r requirements/ros-jazzy.txt -r requirements/python.txt
	$(PY) scripts/fix_ros_cmake_paths.py
	touch $@

build: install/.built

install/.built: $(VENV)/.deps-installed $(PKG_SOURCES)
	# symlink-install leaves links to deleted data files behind; they would fail the copy step
	if [ -d build ]; then find build -xtype l -delete; fi
	source $(VENV)/bin/activate && export AMENT_PREFIX_PATH=$(CURDIR)/$(VENV) && \
	  colcon --log-base build/log build --base-paths src --symlink-install \
	    --event-handlers console_direct- --cmake-args -DBUILD_TESTING=OFF
	touch $@

demo: build
	$(WS) python -m msvla_bringup.demo --robot $(ROBOT) --episodes $(EPISODES)

test: build
	$(WS) python -m pytest

benchmark: build
	$(WS) python benchmarks/latency_franka.py
	$(WS) python benchmarks/safety.py
	$(WS) python benchmarks/vehicle.py
	$(WS) python benchmarks/executor.py

# Offline metrics on the test split of bags/franka (when recorded) and closed-loop grasp success
# on held-out cluttered scenes, RGB-D and RGB-only: runs/eval/franka_rgbd/report.md.
eval: build
	$(WS) python -m msvla_training.evaluate --config config/eval/franka_grasp.yaml $(if $(wildcard bags/franka),,--closed-loop-only)

# Closed-loop evaluation of the vehicle graph on held-out scenes (route following, stopping before an
# obstacle), shield on, shield off (simulation only) and each sensor ablated:
# runs/eval/vehicle_multisensor/report.md. A quick run: make eval-vehicle VEHICLE_EVAL_ARGS="--episodes 3".
VEHICLE_EVAL_ARGS ?=
eval-vehicle: build
	$(WS) python -m msvla_bringup.vehicle_eval --config config/eval/vehicle.yaml $(VEHICLE_EVAL_ARGS)

# Scripted-expert demonstrations for the default model (cluttered scenes, noisy sensors).
RECORD_EPISODES ?= 4000
RECORD_SEED_START ?= 100000
record: build
	$(WS) python -m msvla_sim.record_franka --output bags/franka --episodes $(RECORD_EPISODES) --seed-start $(RECORD_SEED_START) --frames 2

# The shipped model: `make train` on 4000 episodes, then, after `make record RECORD_SEED_START=104000`,
# `make train TRAIN_CONFIG=config/training/franka_grasp_round2.yaml` on all 8000, then, after
# `make record RECORD_SEED_START=108000` and `... RECORD_SEED_START=112000`,
# `make train TRAIN_CONFIG=config/training/franka_grasp_round3.yaml` on all 16 000, then, after
# `make record RECORD_SEED_START=116000` and `... RECORD_SEED_START=120000`,
# `make train TRAIN_CONFIG=config/training/franka_grasp_round4.yaml` on all 24 000.
TRAIN_CONFIG ?= config/training/franka_grasp.yaml
train: build
	$(WS) python -m msvla_training.train --config $(TRAIN_CONFIG)

# The shipped vehicle model was first trained on 136 episodes (35 s at most, perturbed steering, random
# initial speed) from three runs: `make record-vehicle` (seeds 0-43, static obstacles in and beside
# the lane), VEHICLE_RECORD_ARGS="--episodes 41 --seed-start 80 --in-lane-fraction 0.4" and
# VEHICLE_RECORD_ARGS="--episodes 51 --seed-start 200 --in-lane-fraction 0" (a clear lane), then
# `make train-vehicle` (config/training/vehicle_drive.yaml).
VEHICLE_RECORD_ARGS ?= --episodes 44 --seed-start 0 --in-lane-fraction 0.4
record-vehicle: build
	$(WS) python -m msvla_sim.record_vehicle --output bags/vehicle --seconds 35 --steering-noise 0.08 --max-initial-speed 8 $(VEHICLE_RECORD_ARGS)

# Then 60 episodes with forced stops (the car is braked to a standstill as the shield does for a
# pedestrian): VEHICLE_RECORD_ARGS="--episodes 40 --seed-start 300 --in-lane-fraction 0.2 --n-moving 2
# --forced-stops-per-min 2 --stop-for-crossing 0.7" and the same with "--episodes 20 --seed-start 340"
# without --n-moving, and a fine-tune from the first model (runs/train/vehicle_multisensor):
# make train-vehicle VEHICLE_TRAIN_CONFIG=config/training/vehicle_drive_stops.yaml
# Then 40 episodes in which every pedestrian starting to cross ahead brakes the car to a standstill:
# VEHICLE_RECORD_ARGS="--episodes 40 --seed-start 400 --in-lane-fraction 0 --n-moving 2
# --forced-stops-per-min 1 --stop-for-crossing 1.0" and a fine-tune from the previous model:
# make train-vehicle VEHICLE_TRAIN_CONFIG=config/training/vehicle_drive_crossings.yaml
VEHICLE_TRAIN_CONFIG ?= config/training/vehicle_drive.yaml
train-vehicle: build
	$(WS) python -m msvla_training.train --config $(VEHICLE_TRAIN_CONFIG)

# Re-pin: regenerate the constraints file from the current venv.
constraints:
	{ echo "# Exact versions of everything requirements/*.txt installs (pip freeze of a fresh .venv)."; \
	  echo "# Regenerate with: make constraints"; \
	  $(PIP) freeze --all | grep -v -E "^(pip|wheel)=="; } > requirements/constraints.txt

clean:
	rm -rf build install log
