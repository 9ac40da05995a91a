/* An independent Modbus peer on a serial line: libmodbus (Debian's
 * libmodbus-dev) as an RTU slave on the given terminal at 19200 8E1, unit 5,
 * holding registers 0..9 holding 200, 201, ... 209.
 * Built by collectors/modbus/rtu_test.go: cc -o peer libmodbus_rtu_slave.c -lmodbus
 * Usage: peer /dev/pts/N */
#include <errno.h>
#include <stdio.h>
#include <modbus/modbus.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s TTY\n", argv[0]);
        return 2;
    }
    modbus_t *ctx = modbus_new_rtu(argv[1], 19200, 'E', 8, 1);
    if (ctx == NULL || modbus_set_slave(ctx, 5) == -1 || modbus_connect(ctx) == -1) {
        fprintf(stderr, "libmodbus: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_mapping_t *map = modbus_mapping_new(0, 0, 20, 0);
    for (int i = 0; i < 10; i++) map->tab_registers[i] = 200 + i;
    uint8_t req[MODBUS_RTU_MAX_ADU_LENGTH];
    for (;;) {
        int n = modbus_receive(ctx, req);
        if (n > 0) modbus_reply(ctx, req, n, map);
        else if (n == -1 && errno != EMBBADCRC && errno != EMBBADSLAVE) break;
    }
    fprintf(stderr, "libmodbus: %s\n", modbus_strerror(errno));
    modbus_mapping_free(map);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
