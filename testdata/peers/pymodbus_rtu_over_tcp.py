#!/usr/bin/python3
"""An independent Modbus peer: pymodbus serving RTU frames over TCP, as a
serial device server in transparent mode does. Holding registers 0..9 hold
100, 101, ... 109 on unit 7. Usage: pymodbus_rtu_over_tcp.py PORT"""
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartTcpServer
from pymodbus.transaction import ModbusRtuFramer

port = int(sys.argv[1])
slave = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, [100 + i for i in range(10)] + [0] * 10), zero_mode=True)
ctx = ModbusServerContext(slaves={7: slave}, single=False)
StartTcpServer(context=ctx, address=("127.0.0.1", port), framer=ModbusRtuFramer, allow_reuse_address=True)
