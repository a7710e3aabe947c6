# vmm: a type-1 mini hypervisor for x86-64 (Intel VT-x with EPT), built as
# a UEFI application with Debian's GNU-EFI.
#
#   make            build build/vmm.efi (and the boot disk contents)
#   make test       unit tests (cmocka) and end-to-end boots (Bochs, QEMU)
#   make unit       unit tests only
#   make check-layers  the layering rules (README.md, "Layers")
#   make e2e        end-to-end tests only
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each
#   make bench      print BENCH lines
#   make run        boot the default demo in Bochs, serial console here

BUILD     ?= build
CC        ?= gcc
LD        ?= ld
OBJCOPY   ?= objcopy
OBJDUMP   ?= objdump
EFI_INC   ?= /usr/include/efi
EFI_LIB   ?= /usr/lib

VERSION   := 0.1.0
GIT_REV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN      := -Wall -Wextra -Werror
# Freestanding code: no red zone (interrupts and exceptions use the same
# stack), no SSE (guest FPU state must never be clobbered by the
# hypervisor), frame pointers for the panic backtrace.
IMAGE_CFLAGS := -std=c11 $(WARN) -O2 -g -ffreestanding -fpic -fshort-wchar \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	-fno-strict-aliasing -DGNU_EFI_USE_MS_ABI \
	-DVMM_VERSION='"$(VERSION)"' -DVMM_GIT_REV='"$(GIT_REV)"' \
	-I. -Iinclude -isystem $(EFI_INC) -isystem $(EFI_INC)/x86_64
IMAGE_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic --no-undefined -T linker.ld

# The hardware virtualization backend: vmm/$(VIRT)/ implements vmm/virt.h.
# Intel VT-x is the only one today; an AMD SVM backend would be a sibling
# folder. Its capability parser is plain C, shared with the unit tests.
VIRT      ?= vmx
VIRT_SHARED_SRCS := $(wildcard vmm/$(VIRT)/caps.c)
VIRT_SRCS := $(filter-out $(VIRT_SHARED_SRCS),$(wildcard vmm/$(VIRT)/*.c)) $(wildcard vmm/$(VIRT)/*.S)

# The guest platform's device models, the MMIO instruction emulator and the
# Linux loader: shared, so that cmocka and the fuzzers exercise them.
PLATFORM_SRCS := devices/lapic.c devices/ioapic.c devices/acpi_pm.c devices/acpi_tables.c \
	devices/pci.c devices/virtio_pci.c devices/virtqueue.c devices/virtio_blk.c \
	devices/disk.c devices/virtio_net.c devices/virtio_console.c devices/virtio_balloon.c devices/i6300esb.c vmm/insn_decode.c vmm/guest_walk.c vmm/linux_boot.c
# Code shared with host tools and tests (no hardware access).
SHARED_SRCS := boot/config.c boot/tsc.c boot/smbios.c boot/ipmi.c boot/tco.c lib/crc32c.c lib/lz.c vmm/savefile.c vmm/mce.c boot/memmap.c boot/acpi.c vmm/page_alloc.c \
	$(VIRT_SHARED_SRCS) mgmt/vm_state.c vmm/cpuid_policy.c vmm/speculation.c vmm/sched_policy.c \
	vmm/vm_clock.c \
	devices/vuart.c devices/console.c devices/port_bus.c devices/pic.c devices/pit.c devices/rtc.c \
	devices/devstate.c devices/device_table.c vmm/vcpu_state.c vmm/xstate.c lib/calendar.c lib/fmt.c vmm/log_ring.c \
	vmm/task_switch.c boot/fat.c lib/store.c vmm/storage/ata.c \
	$(PLATFORM_SRCS)
IMAGE_SRCS := $(SHARED_SRCS) boot/efi_main.c boot/efi_console.c \
	boot/efi_file.c boot/efi_memory.c boot/ipmi_kcs.c boot/vm_loader.c boot/handover.c boot/quiesce.c boot/handover_switch.S \
	vmm/main.c vmm/percpu.c vmm/nmi.c vmm/mce_cpu.c vmm/log.c vmm/uart16550.c vmm/panic.c vmm/exceptions.S \
	$(VIRT_SRCS) \
	vmm/vm.c vmm/vm_save.c vmm/lazy_restore.c vmm/vcpu.c vmm/xstate_cpu.c vmm/speculation_cpu.c vmm/host_irq.c vmm/guest_boot.c vmm/sched.c vmm/clock.c lib/string.c \
	vmm/control.c vmm/control_host.c vmm/control_vm.c vmm/control_network.c \
	vmm/control_console.c vmm/control_saved.c vmm/control_disk.c vmm/hypercall.c vmm/mgmt.c \
	vmm/network.c mgmt/proto.c vnet/switch.c \
	vnet/dhcp.c vmm/mmio.c vmm/platform.c vmm/library.c boot/store_locate.c vmm/storage/store_host.c \
	vmm/storage/block.c vmm/storage/ata_disk.c vmm/storage/ahci.c vmm/storage/nvme.c \
	vmm/storage/virtio_disk.c
IMAGE_OBJS := $(patsubst %,$(BUILD)/image/%.o,$(IMAGE_SRCS))

HOST_CFLAGS := -std=c11 $(WARN) -g -O1 -I. -Iinclude \
	-fsanitize=address,undefined -fno-sanitize-recover=all
UNIT_TESTS := fmt config memmap page_alloc acpi vmx_caps ept vm_state cpuid_policy \
	vm_lifecycle vuart port_bus pic pit rtc proto session shell switch dhcp sha256 network \
	vmmctl lapic ioapic acpi_pm acpi_tables pci virtio_pci virtqueue virtio_blk disk \
	library virtio_net insn_decode guest_walk linux_boot sched_policy log_ring console \
	devstate spinlock msr_policy control vm_clock vcpu_state lz savefile mce task_switch \
	xstate speculation tsc smbios ipmi tco json base64 vmm_agent virtio_console virtio_balloon guest_agent i6300esb \
	fiber store ata fat store_host
UNIT_BINS := $(patsubst %,$(BUILD)/unit/test_%,$(UNIT_TESTS))

GUESTS_64 := hello64 cpuid_msr busy attack timer pic_pit reboot echo count storm blk_flood conform \
	deadline agent persist
GUEST_BINS := $(BUILD)/guests/hello.bin $(patsubst %,$(BUILD)/guests/%.bin,$(GUESTS_64)) \
	$(BUILD)/guests/mgmt.bin $(BUILD)/guests/flood-disk.bin
GUEST_CFLAGS := -std=c11 $(WARN) -O2 -ffreestanding -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-I. -Itests/guests/lib -Iinclude
GUEST_LIB := tests/guests/lib/start.S tests/guests/lib/guest.c tests/guests/lib/guest.h include/abi/hypercall.h

.PHONY: all image unit e2e fuzz test bench run clean check-layers
all: image

image: $(BUILD)/vmm.efi $(GUEST_BINS)

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/image/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(IMAGE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/image/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(CC) $(IMAGE_CFLAGS) -MMD -MP -c $< -o $@

# The guest's STAR, LSTAR, CSTAR, SFMASK and KERNEL_GS_BASE stay loaded
# after a VM exit; that is safe only while the hypervisor never executes
# an instruction that reads them or the GS/FS bases (docs/security.md,
# "Host state across VM exits"). The link fails if one appears.
ROOT_FORBIDDEN_INSNS := swapgs|syscall|sysretl?q?|sysenter|sysexitl?q?|rd[fg]sbase|wr[fg]sbase

$(BUILD)/vmm.so: $(IMAGE_OBJS) linker.ld
	$(LD) $(IMAGE_LDFLAGS) $(EFI_LIB)/crt0-efi-x86_64.o $(IMAGE_OBJS) \
		-L$(EFI_LIB) -lgnuefi -o $@.tmp
	$(Q)if $(OBJDUMP) -d --no-show-raw-insn $@.tmp | \
		grep -E '^ +[0-9a-f]+:[[:space:]]+($(ROOT_FORBIDDEN_INSNS))\b'; then \
		echo "vmm.so: the hypervisor must not execute these (docs/security.md)" >&2; \
		rm -f $@.tmp; exit 1; fi
	$(Q)mv $@.tmp $@

$(BUILD)/vmm.efi: $(BUILD)/vmm.so
	$(OBJCOPY) -j .text -j .reloc -j .data -j .dynamic -j .rela -j .dynsym \
		-j .dynstr --target efi-app-x86_64 --subsystem=10 $< $@

# Test guests: flat binaries. Real-mode ROMs are one assembly file; 64-bit
# guests are C on the small runtime in tests/guests/lib.
$(BUILD)/guests/%.bin: tests/guests/%.S tests/guests/guest.ld
	@mkdir -p $(dir $@)
	@echo "  GUEST   $@"
	$(Q)$(CC) -c -nostdlib -ffreestanding $< -o $(BUILD)/guests/$*.o
	$(Q)$(LD) -T tests/guests/guest.ld $(BUILD)/guests/$*.o -o $(BUILD)/guests/$*.elf
	$(Q)$(OBJCOPY) -O binary $(BUILD)/guests/$*.elf $@

# blk_flood's disk: larger than the largest virtio-blk request (64 KiB).
$(BUILD)/guests/flood-disk.bin:
	@mkdir -p $(dir $@)
	$(Q)head -c 131072 /dev/zero >$@

# link_guest64 SOURCES: a 64-bit guest from SOURCES on the runtime.
define link_guest64
	@mkdir -p $(dir $@)
	@echo "  GUEST   $@"
	$(Q)$(CC) $(GUEST_CFLAGS) -nostdlib -static -Wl,--build-id=none,--no-warn-rwx-segments \
		-T tests/guests/guest64.ld tests/guests/lib/start.S tests/guests/lib/guest.c $(1) \
		-o $(basename $@).elf
	$(Q)$(OBJCOPY) -O binary $(basename $@).elf $@
endef

GUEST64_DEPS := $(GUEST_LIB) tests/guests/guest64.ld include/x86/cpu.h include/x86/exception_stubs.S

$(BUILD)/guests/%.bin: tests/guests/%.c $(GUEST64_DEPS)
	$(call link_guest64,$<)

# Guests with a virtio driver of the runtime's; the agent guest with the additions' library.
GUEST_VIRTIO := tests/guests/lib/virtio_pci.c tests/guests/lib/virtio_pci.h
$(BUILD)/guests/blk_flood.bin: tests/guests/blk_flood.c $(GUEST_VIRTIO) $(GUEST64_DEPS)
	$(call link_guest64,$< tests/guests/lib/virtio_pci.c)
$(BUILD)/guests/persist.bin: tests/guests/persist.c $(GUEST_VIRTIO) $(GUEST64_DEPS)
	$(call link_guest64,$< tests/guests/lib/virtio_pci.c lib/string.c)
GUEST_AGENT_SRCS := tests/guests/lib/agent.c tests/guests/lib/virtio_pci.c lib/json.c lib/fmt.c \
	lib/string.c
$(BUILD)/guests/agent.bin: tests/guests/agent.c $(GUEST_AGENT_SRCS) tests/guests/lib/agent.h \
		$(GUEST_VIRTIO) lib/json.h $(GUEST64_DEPS)
	$(call link_guest64,$< $(GUEST_AGENT_SRCS))

# The management VM: the line's protocol and shell on the guest runtime.
MGMT_VM_SRCS := mgmt/vm/mgmt_vm.c mgmt/vm/guest_os.c mgmt/guest_agent.c mgmt/proto.c mgmt/session.c \
	mgmt/vm/shell.c mgmt/sha256.c mgmt/vm_state.c lib/fmt.c lib/string.c lib/json.c lib/base64.c \
	lib/fiber.c
$(BUILD)/guests/mgmt.bin: $(MGMT_VM_SRCS) $(GUEST64_DEPS) include/abi/api.h mgmt/proto.h mgmt/vm/shell.h \
		mgmt/sha256.h mgmt/session.h mgmt/guest_agent.h mgmt/vm/guest_os.h mgmt/vm/mgmt_vm.h \
		lib/json.h lib/base64.h lib/fiber.h
	$(call link_guest64,$(MGMT_VM_SRCS))

# Unit tests: each test file plus the shared sources it exercises. A device
# with a state descriptor needs the codec.
DEVSTATE_SRCS := devices/devstate.c lib/fmt.c
$(BUILD)/unit/test_fmt: tests/unit/test_fmt.c lib/fmt.c
$(BUILD)/unit/test_config: tests/unit/test_config.c boot/config.c lib/fmt.c
$(BUILD)/unit/test_memmap: tests/unit/test_memmap.c boot/memmap.c lib/fmt.c
$(BUILD)/unit/test_page_alloc: tests/unit/test_page_alloc.c vmm/page_alloc.c
$(BUILD)/unit/test_acpi: tests/unit/test_acpi.c boot/acpi.c lib/fmt.c
$(BUILD)/unit/test_vmx_caps: tests/unit/test_vmx_caps.c vmm/vmx/caps.c lib/fmt.c
$(BUILD)/unit/test_ept: tests/unit/test_ept.c vmm/vmx/ept.c vmm/page_alloc.c
$(BUILD)/unit/test_vm_state: tests/unit/test_vm_state.c mgmt/vm_state.c
$(BUILD)/unit/test_cpuid_policy: tests/unit/test_cpuid_policy.c vmm/cpuid_policy.c vmm/speculation.c
$(BUILD)/unit/test_speculation: tests/unit/test_speculation.c vmm/speculation.c
$(BUILD)/unit/test_tsc: tests/unit/test_tsc.c boot/tsc.c
$(BUILD)/unit/test_smbios: tests/unit/test_smbios.c boot/smbios.c boot/acpi.c lib/fmt.c
$(BUILD)/unit/test_ipmi: tests/unit/test_ipmi.c boot/ipmi.c
$(BUILD)/unit/test_tco: tests/unit/test_tco.c boot/tco.c
$(BUILD)/unit/test_sched_policy: tests/unit/test_sched_policy.c vmm/sched_policy.c
# The VM clock with the timer models that read it.
$(BUILD)/unit/test_vm_clock: tests/unit/test_vm_clock.c vmm/vm_clock.c devices/pit.c devices/lapic.c devices/devstate.c lib/fmt.c
$(BUILD)/unit/test_vm_lifecycle: tests/unit/test_vm_lifecycle.c vmm/vm.c mgmt/vm_state.c lib/fmt.c \
	devices/vuart.c devices/console.c devices/port_bus.c devices/pic.c devices/pit.c \
	devices/rtc.c lib/calendar.c vmm/clock.c vmm/vm_clock.c vmm/page_alloc.c vmm/platform.c \
	$(PLATFORM_SRCS) boot/acpi.c vmm/network.c vnet/switch.c vnet/dhcp.c devices/devstate.c \
	vmm/vcpu_state.c vmm/xstate.c vmm/vm_save.c vmm/lazy_restore.c vmm/savefile.c lib/lz.c lib/crc32c.c \
	vmm/cpuid_policy.c \
	vmm/speculation.c mgmt/proto.c boot/config.c
$(BUILD)/unit/test_vuart: tests/unit/test_vuart.c devices/vuart.c devices/console.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_console: tests/unit/test_console.c devices/console.c
$(BUILD)/unit/test_log_ring: tests/unit/test_log_ring.c vmm/log_ring.c
$(BUILD)/unit/test_port_bus: tests/unit/test_port_bus.c devices/port_bus.c
$(BUILD)/unit/test_pic: tests/unit/test_pic.c devices/pic.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_pit: tests/unit/test_pit.c devices/pit.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_rtc: tests/unit/test_rtc.c devices/rtc.c lib/calendar.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_proto: tests/unit/test_proto.c mgmt/proto.c
$(BUILD)/unit/test_shell: tests/unit/test_shell.c mgmt/vm/shell.c mgmt/proto.c lib/fmt.c
$(BUILD)/unit/test_switch: tests/unit/test_switch.c vnet/switch.c vnet/dhcp.c lib/fmt.c
$(BUILD)/unit/test_dhcp: tests/unit/test_dhcp.c vnet/dhcp.c lib/fmt.c
$(BUILD)/unit/test_lapic: tests/unit/test_lapic.c devices/lapic.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_ioapic: tests/unit/test_ioapic.c devices/ioapic.c devices/lapic.c \
	$(DEVSTATE_SRCS)
$(BUILD)/unit/test_acpi_pm: tests/unit/test_acpi_pm.c devices/acpi_pm.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_acpi_tables: tests/unit/test_acpi_tables.c devices/acpi_tables.c boot/acpi.c \
	lib/fmt.c
$(BUILD)/unit/test_pci: tests/unit/test_pci.c devices/pci.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_virtio_pci: tests/unit/test_virtio_pci.c devices/virtio_pci.c devices/pci.c \
	$(DEVSTATE_SRCS)
$(BUILD)/unit/test_virtqueue: tests/unit/test_virtqueue.c devices/virtqueue.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_virtio_blk: tests/unit/test_virtio_blk.c devices/virtio_blk.c devices/virtqueue.c \
	devices/disk.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_disk: tests/unit/test_disk.c devices/disk.c
$(BUILD)/unit/test_library: tests/unit/test_library.c vmm/library.c
$(BUILD)/unit/test_virtio_net: tests/unit/test_virtio_net.c devices/virtio_net.c devices/virtqueue.c \
	$(DEVSTATE_SRCS)
$(BUILD)/unit/test_i6300esb: tests/unit/test_i6300esb.c devices/i6300esb.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_guest_agent: tests/unit/test_guest_agent.c mgmt/guest_agent.c lib/json.c lib/fmt.c
$(BUILD)/unit/test_virtio_console: tests/unit/test_virtio_console.c devices/virtio_console.c \
	devices/virtqueue.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_virtio_balloon: tests/unit/test_virtio_balloon.c devices/virtio_balloon.c \
	devices/virtqueue.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_insn_decode: tests/unit/test_insn_decode.c vmm/insn_decode.c
$(BUILD)/unit/test_guest_walk: tests/unit/test_guest_walk.c vmm/guest_walk.c
$(BUILD)/unit/test_linux_boot: tests/unit/test_linux_boot.c vmm/linux_boot.c lib/fmt.c
$(BUILD)/unit/test_devstate: tests/unit/test_devstate.c devices/device_table.c $(DEVSTATE_SRCS) \
	devices/pic.c devices/rtc.c lib/calendar.c devices/vuart.c devices/ioapic.c devices/acpi_pm.c \
	devices/pit.c devices/lapic.c devices/pci.c devices/virtio_pci.c devices/virtqueue.c \
	devices/virtio_blk.c devices/virtio_net.c devices/virtio_console.c devices/virtio_balloon.c \
	devices/i6300esb.c devices/disk.c
$(BUILD)/unit/test_vcpu_state: tests/unit/test_vcpu_state.c vmm/vcpu_state.c vmm/xstate.c $(DEVSTATE_SRCS)
$(BUILD)/unit/test_sha256: tests/unit/test_sha256.c mgmt/sha256.c
$(BUILD)/unit/test_mce: tests/unit/test_mce.c vmm/mce.c
$(BUILD)/unit/test_task_switch: tests/unit/test_task_switch.c vmm/task_switch.c
$(BUILD)/unit/test_xstate: tests/unit/test_xstate.c vmm/xstate.c
$(BUILD)/unit/test_spinlock: tests/unit/test_spinlock.c
$(BUILD)/unit/test_lz: tests/unit/test_lz.c lib/lz.c lib/crc32c.c
$(BUILD)/unit/test_json: tests/unit/test_json.c lib/json.c lib/fmt.c
$(BUILD)/unit/test_base64: tests/unit/test_base64.c lib/base64.c
$(BUILD)/unit/test_fiber: tests/unit/test_fiber.c lib/fiber.c
$(BUILD)/unit/test_store: tests/unit/test_store.c lib/store.c lib/crc32c.c lib/fmt.c
$(BUILD)/unit/test_ata: tests/unit/test_ata.c vmm/storage/ata.c lib/fmt.c
$(BUILD)/unit/test_store_host: tests/unit/test_store_host.c vmm/storage/store_host.c lib/store.c \
	lib/crc32c.c lib/fmt.c vmm/page_alloc.c
# FAT volumes made by mtools, read by the test (the order-only prerequisite).
$(BUILD)/unit/fat/vmmstore.ref: tests/unit/make_fat_images.sh
	$(Q)tests/unit/make_fat_images.sh $(BUILD)/unit/fat
$(BUILD)/unit/test_fat: HOST_CFLAGS += -DFAT_IMAGES='"$(abspath $(BUILD))/unit/fat"'
$(BUILD)/unit/test_fat: tests/unit/test_fat.c boot/fat.c lib/fmt.c | $(BUILD)/unit/fat/vmmstore.ref
# Runs the built agent (the order-only prerequisite): host code around a guest program.
$(BUILD)/unit/test_vmm_agent: HOST_CFLAGS += -DVMM_AGENT='"$(abspath $(BUILD))/additions/vmm-agent"'
$(BUILD)/unit/test_vmm_agent: tests/unit/test_vmm_agent.c lib/json.c lib/fmt.c lib/base64.c | \
	$(BUILD)/additions/vmm-agent
$(BUILD)/unit/test_savefile: tests/unit/test_savefile.c vmm/savefile.c lib/lz.c lib/crc32c.c lib/fmt.c
$(BUILD)/unit/test_msr_policy: tests/unit/test_msr_policy.c vmm/vcpu.c vmm/cpuid_policy.c vmm/speculation.c \
	vmm/xstate.c \
	vmm/sched_policy.c devices/port_bus.c
$(BUILD)/unit/test_session: tests/unit/test_session.c mgmt/session.c mgmt/proto.c mgmt/sha256.c
$(BUILD)/unit/test_network: tests/unit/test_network.c vmm/network.c vmm/page_alloc.c \
	vnet/switch.c vnet/dhcp.c lib/fmt.c vmm/clock.c
$(BUILD)/unit/test_control: HOST_CFLAGS += -DVMM_VERSION='"test"' -DVMM_GIT_REV='"test"'
$(BUILD)/unit/test_control: tests/unit/test_control.c vmm/control.c vmm/control_host.c \
	vmm/control_vm.c vmm/control_network.c vmm/control_console.c vmm/control_saved.c \
	vmm/control_disk.c vmm/hypercall.c \
	vmm/network.c vmm/page_alloc.c vmm/library.c mgmt/vm_state.c vmm/sched_policy.c \
	mgmt/proto.c vnet/switch.c vnet/dhcp.c boot/config.c devices/console.c lib/fmt.c \
	vmm/savefile.c lib/lz.c lib/crc32c.c devices/disk.c
$(UNIT_BINS):
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $^ -lcmocka -o $@

# vmmctl, the host admin tool (docs/vmmctl.md): plain C11 + POSIX, built by
# `image` and `test` through `tools`.
VMMCTL_SRCS := mgmt/vmmctl/vmmctl_cli.c mgmt/vmmctl/vmmctl_cmd.c mgmt/vmmctl/vmmctl_conn.c \
	mgmt/vmmctl/vmmctl_io.c mgmt/vmmctl/vmmctl_out.c mgmt/proto.c mgmt/session.c mgmt/vm/shell.c mgmt/sha256.c lib/fmt.c \
	vmm/savefile.c lib/lz.c lib/crc32c.c
$(BUILD)/vmmctl: mgmt/vmmctl/vmmctl.c $(VMMCTL_SRCS) mgmt/vmmctl/vmmctl.h include/abi/api.h \
		mgmt/proto.h mgmt/vm/shell.h mgmt/sha256.h mgmt/session.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(CC) -std=c11 $(WARN) -O2 -D_DEFAULT_SOURCE -I. -Iinclude mgmt/vmmctl/vmmctl.c \
		$(VMMCTL_SRCS) -o $@

$(BUILD)/unit/test_vmmctl: tests/unit/test_vmmctl.c $(VMMCTL_SRCS)

# vmm-agent, the guest agent (docs/guest-agent.md): a static Linux program
# for the guests, speaking the QEMU guest agent protocol.
AGENT_SRCS := mgmt/additions/vmm_agent.c lib/json.c lib/fmt.c lib/base64.c
$(BUILD)/additions/vmm-agent: $(AGENT_SRCS) lib/json.h lib/base64.h lib/fmt.h
	@mkdir -p $(dir $@)
	@echo "  AGENT   $@"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -Os -s -static -I. -Iinclude $(AGENT_SRCS) -o $@

# The guest additions' disk (InstallAdditions, docs/guest-agent.md): a FAT
# image with the agent and its installer, made without root by mtools.
$(BUILD)/additions/additions.img: $(BUILD)/additions/vmm-agent mgmt/additions/install.sh
	@echo "  IMG     $@"
	$(Q)rm -f $@.tmp && dd if=/dev/zero of=$@.tmp bs=1M count=2 status=none
	$(Q)mformat -i $@.tmp -v VMMADDITION ::
	$(Q)mcopy -i $@.tmp $(BUILD)/additions/vmm-agent mgmt/additions/install.sh ::/
	$(Q)mv $@.tmp $@

image: $(BUILD)/additions/vmm-agent $(BUILD)/additions/additions.img

# vmm-store, the store's admin tool (docs/store.md): plain C11 + POSIX.
VMM_STORE_SRCS := tools/vmm-store.c lib/store.c lib/crc32c.c lib/fmt.c
$(BUILD)/vmm-store: $(VMM_STORE_SRCS) lib/store.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(CC) -std=c11 $(WARN) -O2 -I. -Iinclude $(VMM_STORE_SRCS) -o $@

.PHONY: tools
tools: $(BUILD)/vmmctl $(BUILD)/vmm-store
image: tools
test: tools

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

e2e: image
	@tests/e2e/run.sh

# Coverage-guided fuzzing of everything a guest or the serial line feeds:
# FUZZ_SECONDS per target (CI uses a short bounded run).
FUZZ_SECONDS ?= 60
fuzz:
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

test: check-layers unit e2e

check-layers:
	@tools/check-layers.py --virt $(VIRT) --cc $(CC) --efi-inc $(EFI_INC)

$(BUILD)/bench/switch_bench: tests/bench/switch_bench.c vnet/switch.c vnet/dhcp.c lib/fmt.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 $(WARN) -O2 -I. -Iinclude $^ -o $@

$(BUILD)/bench/savefile_bench: tests/bench/savefile_bench.c vmm/savefile.c lib/lz.c lib/crc32c.c lib/fmt.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 $(WARN) -O2 -I. -Iinclude $^ -o $@

# Installs what it needs first, as the README's two commands do.
bench:
	@tools/install-deps.sh
	@$(MAKE) --no-print-directory image $(BUILD)/bench/switch_bench $(BUILD)/bench/savefile_bench
	@$(BUILD)/bench/switch_bench
	@$(BUILD)/bench/savefile_bench
	@tests/bench/run.sh

run:
	@tools/demo.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
