# The two commands of the README: `make run` and `make test`.
BUILD ?= build
JOBS ?= 2
ARGS ?=
CMD ?= all
PYTHON ?= /usr/bin/python3

.PHONY: all setup configure build run test unit e2e bench clean

all: build

setup:
	@./scripts/setup.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECAPTURE_WERROR=ON

configure: setup $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/ecapture $(CMD) $(ARGS)

unit: build
	$(PYTHON) scripts/check_layers.py
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

e2e: build
	$(PYTHON) tests/e2e/run.py --binary $(abspath $(BUILD))/ecapture

test: unit e2e

bench: build
	$(PYTHON) bench/ssl_write_cost.py --build $(abspath $(BUILD))

clean:
	rm -rf $(BUILD)
