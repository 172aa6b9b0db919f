"""The DCASE 2023 Task 7 classes: their names, their dev-set folders and their submission folders.

The one place these are written down; the synthesiser, the dataset scan, the submission writer, the DCASE
evaluation statistics and the tables read them from here.
"""

from __future__ import annotations

import re

from occ.errors import DataError

DCASE_CLASSES = ["DogBark", "Footstep", "GunShot", "Keyboard", "MovingMotorVehicle", "Rain", "Sneeze_Cough"]
DCASE_CLASS_MAP = {name: i for i, name in enumerate(DCASE_CLASSES)}
# the official submission (and evaluation-statistics) folder of each class; note GunShot -> gunshot
DCASE_SNAKE = {
    "DogBark": "dog_bark", "Footstep": "footstep", "GunShot": "gunshot", "Keyboard": "keyboard",
    "MovingMotorVehicle": "moving_motor_vehicle", "Rain": "rain", "Sneeze_Cough": "sneeze_cough",
}
DCASE_ALIASES = {"Sneeze": "Sneeze_Cough"}  # dev-set folder names of older releases

__all__ = ["DCASE_CLASSES", "DCASE_CLASS_MAP", "DCASE_SNAKE", "DCASE_ALIASES", "class_folder"]


def class_folder(name: str) -> str:
    """Submission folder name of a class.

    Parameters
    ----------
    name : str
        A DCASE class name (``"DogBark"``, ``"Sneeze_Cough"``...), which maps to the official folder
        (``"dog_bark"``, ``"sneeze_cough"``; note ``"GunShot"`` -> ``"gunshot"``), an official folder name
        (returned as is), or any other class name, which is snake-cased (``"MetalClank"`` -> ``"metal_clank"``).

    Returns
    -------
    str
    """
    if name in DCASE_SNAKE:
        return DCASE_SNAKE[name]
    if name in DCASE_SNAKE.values():
        return name
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    if not s:
        raise DataError(f"class name {name!r} gives an empty folder name; use a name with letters or digits")
    return s
